import { closeSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Claims older than this are from runs that ended; their ports may be handed out again. */
const CLAIM_LIFETIME_MS = 30 * 60_000
const claims = join(tmpdir(), 'open-payments-port-claims')

/**
 * A port nothing listens on, for a server whose URL must be known before it starts (the demo, the
 * tests). Taken from 20000-29999, below the kernel's ephemeral range, so that servers listening on
 * port 0 meanwhile are not handed the same port before ours binds it.
 *
 * Between this check and the server's own bind the port is free, so another process testing it
 * then would find it free too: with test files running side by side, two of them once started
 * servers on one port. Each port handed out is therefore claimed first with an exclusive file,
 * which every caller on the machine respects for half an hour.
 */
export async function freePort(): Promise<number> {
  mkdirSync(claims, { recursive: true })
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000)
    if (!claim(port)) continue
    const server = createServer()
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false))
      server.listen(port, '127.0.0.1', () => resolve(true))
    })
    if (free) {
      await new Promise((resolve) => server.close(resolve))
      return port
    }
  }
}

/** Takes the port's claim file, or a stale one over; false when someone else holds it. */
function claim(port: number): boolean {
  const file = join(claims, String(port))
  if (create(file)) return true
  try {
    if (Date.now() - statSync(file).mtimeMs < CLAIM_LIFETIME_MS) return false
    // Renaming is atomic: of two callers reclaiming one stale claim, only one moves it away.
    const moved = `${file}.stale-${process.pid}`
    renameSync(file, moved)
    rmSync(moved, { force: true })
  } catch {
    return false
  }
  return create(file)
}

function create(file: string): boolean {
  try {
    closeSync(openSync(file, 'wx'))
    return true
  } catch {
    return false
  }
}
