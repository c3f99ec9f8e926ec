import { pino } from 'pino'
import { collectDefaultMetrics } from 'prom-client'
import { ConfigError, loadConfig } from './config.ts'
import { openDatabase } from './db/database.ts'
import { migrate } from './db/migrate.ts'
import { serializeError } from './http/log-redaction.ts'
import { createDeps, createServer, ListenError } from './server.ts'

/** Start: config → database → migrations → listeners; stop gracefully on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message)
      process.exit(1)
    }
    throw err
  }
  const logger = pino({
    level: config.logLevel,
    redact: ['req.headers.authorization', 'req.headers.signature', '*.token', '*.secret'],
    serializers: { err: serializeError },
  })
  for (const name of config.generatedSecrets) {
    logger.warn(
      `${name} is not set: using a generated development value stored in ${config.dataDir}/secrets.json`,
    )
  }
  if (!config.databaseUrl) {
    logger.warn(
      `embedded database (PGlite) in ${config.dataDir}: for trying out and development only, it runs with fsync off; set DATABASE_URL for real money`,
    )
  }

  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    schema: config.databaseSchema,
    poolSize: config.databasePoolSize,
    sharedConnections: config.databaseSharedConnections,
    dataDir: config.dataDir,
  })
  const applied = await migrate(database)
  if (applied.length > 0) logger.info({ migrations: applied }, 'applied migrations')

  const deps = createDeps({ config, db: database.db, poolStats: database.poolStats, logger })
  // Process metrics (CPU, memory, event-loop lag) once per process, not per test server.
  collectDefaultMetrics({ register: deps.metrics.registry })
  const server = await createServer(deps)
  try {
    await server.start(config.host)
  } catch (err) {
    if (!(err instanceof ListenError)) throw err
    console.error(err.message)
    await server.stop()
    await database.close()
    process.exit(1)
  }
  const { listeners } = server
  for (const l of listeners)
    logger.info(`${l.role} listening on ${config.host}:${l.port}, public URL ${l.url()}`)
  console.log(`ready: ${listeners.map((l) => `${l.role} ${l.url()}`).join(', ')}`)

  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info(`${signal}: finishing in-flight requests`)
    const timer = setTimeout(() => {
      logger.error('shutdown timed out')
      process.exit(1)
    }, config.shutdownTimeoutMs)
    timer.unref()
    await server.stop()
    await database.close()
    logger.info('stopped')
  }
  process.once('SIGTERM', () => void stop('SIGTERM'))
  process.once('SIGINT', () => void stop('SIGINT'))
}

await main()
