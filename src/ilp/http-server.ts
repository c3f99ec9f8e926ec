import type { FastifyInstance } from 'fastify'
import type { Deps } from '../deps.ts'
import { createApp } from '../http/app.ts'

/** The ILP listener: ILP-over-HTTP for peers. */
export function createIlpApp(deps: Deps): FastifyInstance {
  return createApp({ logger: deps.logger.child({ listener: 'ilp' }) })
}
