import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..', '..')

export interface ServerProcess {
  child: ChildProcess
  output: () => string
  /** Resolves with the exit code. */
  exited: Promise<number | null>
}

const running = new Set<ChildProcess>()

/** Kills every server a test started and did not stop (a failed assertion must not leave one). */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL')
}

/**
 * Starts `src/main.ts` as `npm start` does, with exactly the given environment; or, with `build`,
 * the compiled `dist/main.js` as production does (`npm test` builds it first).
 */
export function spawnServer(
  env: Record<string, string>,
  opts: { build?: boolean } = {},
): ServerProcess {
  const args = opts.build ? ['dist/main.js'] : ['--import', 'tsx', 'src/main.ts']
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  running.add(child)
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      running.delete(child)
      resolve(code)
    }),
  )
  return { child, output: () => out, exited }
}

/** Waits for the "ready:" line, or fails with the process output. */
export async function waitReady(p: ServerProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!p.output().includes('ready:')) {
    if (p.child.exitCode !== null)
      throw new Error(`server exited ${p.child.exitCode}:\n${p.output()}`)
    if (Date.now() > deadline) throw new Error(`server not ready:\n${p.output()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

export async function stop(p: ServerProcess): Promise<number | null> {
  p.child.kill('SIGTERM')
  return p.exited
}
