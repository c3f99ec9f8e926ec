import { ConfigError, loadConfig } from '../config.ts'
import { openDatabase } from './database.ts'
import { migrate } from './migrate.ts'

try {
  const config = loadConfig()
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    schema: config.databaseSchema,
    poolSize: 1,
    sharedConnections: 0,
    dataDir: config.dataDir,
  })
  try {
    const applied = await migrate(database)
    console.log(
      applied.length ? `applied migrations ${applied.join(', ')}` : 'database is up to date',
    )
  } finally {
    await database.close()
  }
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err)
  process.exitCode = 1
}
