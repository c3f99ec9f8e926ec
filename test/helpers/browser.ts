import { createServer, type Server } from 'node:http'
import { type Browser, chromium } from 'playwright-core'

/** Debian's chromium, headless, without the background traffic this closed network refuses. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}

/** A client's finish-redirect endpoint: records the query of every hit and answers a small page. */
export async function startCallbackServer(): Promise<{
  url: string
  hits: URLSearchParams[]
  close(): Promise<void>
}> {
  const hits: URLSearchParams[] = []
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x')
    // Browsers also ask for /favicon.ico; only the finish redirect counts.
    if (url.pathname === '/callback') hits.push(url.searchParams)
    res.writeHead(200, { 'content-type': 'text/html' }).end('<p>back at the client</p>')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}/callback`,
    hits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
