/**
 * One bank of `npm run demo:interledger`: the server started as `npm start` starts it, in a process
 * of its own, on an embedded database in a temporary directory, with its own ILP address and ports.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../src/lib/free-port.ts'

const root = join(import.meta.dirname, '..')
const READY_TIMEOUT_MS = 120_000
const STOP_TIMEOUT_MS = 10_000

// Every bank process started and not yet stopped, ready or not: an interrupted demo stops them all.
const running = new Set<() => Promise<void>>()

/** Stops every bank this process started (see `Bank.stop`). */
export async function stopAllBanks(): Promise<void> {
  await Promise.all([...running].map((stop) => stop()))
}

export interface Bank {
  name: string
  pid: number
  /** The embedded database and generated secrets, removed by `stop`. */
  dataDir: string
  ilpAddress: string
  openPaymentsUrl: string
  ilpUrl: string
  /** The development sign-in password of the bank's consent pages. */
  password: string
  /** Calls the bank's admin API; a non-2xx answer throws with its body. */
  admin(method: string, path: string, body?: unknown): Promise<any>
  /** What the process printed (warnings and errors only), for a failure report. */
  output(): string
  /** Stops the process (SIGTERM, then SIGKILL) and removes its data directory. */
  stop(): Promise<void>
}

export async function startBank(opts: {
  name: string
  ilpAddress: string
  rates: string
}): Promise<Bank> {
  const dataDir = mkdtempSync(join(tmpdir(), 'op-demo-ilp-'))
  const [op, auth, admin, ilp] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ]
  const adminKey = randomBytes(32).toString('base64url')
  const password = randomBytes(12).toString('base64url')
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      DATA_DIR: dataDir,
      OPEN_PAYMENTS_PORT: String(op),
      AUTH_PORT: String(auth),
      ADMIN_PORT: String(admin),
      ILP_PORT: String(ilp),
      OPEN_PAYMENTS_URL: `http://127.0.0.1:${op}`,
      AUTH_SERVER_URL: `http://127.0.0.1:${auth}`,
      ILP_ADDRESS: opts.ilpAddress,
      SERVER_NAME: opts.name,
      RATES: opts.rates,
      ADMIN_API_KEY: adminKey,
      DEV_SIGN_IN_PASSWORD: password,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const collect = (d: Buffer) => {
    out += d.toString()
  }
  child.stdout!.on('data', collect)
  child.stderr!.on('data', collect)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))

  const stop = async () => {
    running.delete(stop)
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
      await exited
      clearTimeout(killer)
    }
    rmSync(dataDir, { recursive: true, force: true })
  }
  running.add(stop)

  const deadline = Date.now() + READY_TIMEOUT_MS
  while (!out.includes('ready:')) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stop()
      throw new Error(`${opts.name} did not start:\n${out}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }

  return {
    name: opts.name,
    pid: child.pid!,
    dataDir,
    ilpAddress: opts.ilpAddress,
    openPaymentsUrl: `http://127.0.0.1:${op}`,
    ilpUrl: `http://127.0.0.1:${ilp}/ilp`,
    password,
    output: () => out,
    stop,
    async admin(method, path, body) {
      const res = await fetch(`http://127.0.0.1:${admin}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${adminKey}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      }).catch((err: Error) => {
        const cause = err.cause instanceof Error ? err.cause.message : err.message
        throw new Error(`${opts.name} does not answer (admin ${method} ${path}): ${cause}`)
      })
      const json = await res.json()
      if (!res.ok) {
        throw new Error(
          `${opts.name} admin ${method} ${path}: ${res.status} ${JSON.stringify(json)}`,
        )
      }
      return json
    },
  }
}
