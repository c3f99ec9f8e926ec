import type { Config } from '../config.ts'
import type { Db } from '../db/database.ts'
import { createHookDirectory, type HookDirectory } from './hooks.ts'
import { IncomingDecisions } from './incoming.ts'

/** One process's core-banking state: where hooks are, and the incoming decisions it knows. */
export interface CoreBanking {
  hooks: HookDirectory
  decisions: IncomingDecisions
}

export function createCoreBanking(db: Db, config: Config): CoreBanking {
  return { hooks: createHookDirectory(db, config), decisions: new IncomingDecisions() }
}
