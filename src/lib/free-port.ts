import { createServer } from 'node:net'

/**
 * A port nothing listens on, for a server whose URL must be known before it starts (the demo, the
 * tests). Taken from 20000-29999, below the kernel's ephemeral range, so that servers listening on
 * port 0 meanwhile are not handed the same port before ours binds it.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000)
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
