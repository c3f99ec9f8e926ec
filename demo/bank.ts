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
// The public ports must be chosen before the process starts (its URLs are built from them), and
// another process may take one while it starts: then it is started again on other ports.
const START_ATTEMPTS = 3
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

type BankOptions = { name: string; ilpAddress: string; rates: string }

export async function startBank(opts: BankOptions): Promise<Bank> {
  for (let attempt = 1; ; attempt++) {
    const started = await launch(opts)
    if (!('portTaken' in started)) return started
    if (attempt === START_ATTEMPTS) throw new Error(started.portTaken)
  }
}

async function launch(opts: BankOptions): Promise<Bank | { portTaken: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'op-demo-ilp-'))
  const [op, auth] = [await freePort(), await freePort()]
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
      // The private listeners take any free port; the ready line says which.
      ADMIN_PORT: '0',
      ILP_PORT: '0',
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
  // The whole ready line, which names the listeners' URLs.
  while (!/ready: [^\n]*\n/.test(out)) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stop()
      const message = `${opts.name} did not start:\n${out}`
      if (out.includes('EADDRINUSE')) return { portTaken: message }
      throw new Error(message)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  const ready = out.slice(out.indexOf('ready:')).split('\n', 1)[0]!
  const listenerUrl = (role: string) => new RegExp(`${role} (http://[^,\\s]+)`).exec(ready)![1]!
  const [ilpUrl, adminUrl] = [listenerUrl('ilp'), listenerUrl('admin')]

  return {
    name: opts.name,
    pid: child.pid!,
    dataDir,
    ilpAddress: opts.ilpAddress,
    openPaymentsUrl: `http://127.0.0.1:${op}`,
    ilpUrl: `${ilpUrl}/ilp`,
    password,
    output: () => out,
    stop,
    async admin(method, path, body) {
      const res = await fetch(`${adminUrl}${path}`, {
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
