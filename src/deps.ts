import type { Logger } from 'pino'
import type { Config } from './config.ts'
import type { Db } from './db/database.ts'

/** What route plugins and workers are given: no container, just these typed handles. */
export interface Deps {
  config: Config
  db: Db
  logger: Logger
}
