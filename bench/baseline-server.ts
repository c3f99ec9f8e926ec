/**
 * The benchmark's baseline: a bare Fastify route doing one INSERT in the same PostgreSQL, no
 * authentication, no signature. Every figure of the real server is also given as a ratio to it.
 */
import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import pg from 'pg'

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
await pool.query(
  'CREATE TABLE IF NOT EXISTS bench_baseline (id uuid PRIMARY KEY, body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())',
)
const app = Fastify()
app.post('/baseline', async (req, reply) => {
  const id = randomUUID()
  await pool.query('INSERT INTO bench_baseline (id, body) VALUES ($1, $2)', [id, req.body])
  return reply.code(201).send({ id })
})
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
console.log('ready')
process.once('SIGTERM', async () => {
  await app.close()
  await pool.query('DROP TABLE IF EXISTS bench_baseline')
  await pool.end()
})
