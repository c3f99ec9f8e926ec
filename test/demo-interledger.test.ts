import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'

const root = join(import.meta.dirname, '..')

/**
 * Runs the demo as `npm run demo:interledger` does; resolves with its exit code and output.
 * `onOutput` sees the output as it grows.
 */
async function runDemo(onOutput: (out: string) => void = () => {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/interledger.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '' },
  })
  let out = ''
  const collect = (d: Buffer) => {
    out += d.toString()
    onOutput(out)
  }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  return { code, out }
}

/** The banks' processes and data directories, as step 1 prints them. */
const banksIn = (out: string) =>
  [...out.matchAll(/process (\d+), database in (\S+)/g)].map(([, pid, dir]) => ({
    pid: Number(pid),
    dir: dir!,
  }))

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const cents = (s: string) => BigInt(s.replace('.', ''))

test('npm run demo:interledger pays USD at Bank A into EUR at Bank B; the books agree', async () => {
  const { code, out } = await runDemo()
  assert.equal(code, 0, out)
  assert.match(out, /Bob asks for: 100\.00 EUR/)
  assert.match(out, /Bob receives: 100\.00 EUR/)
  assert.match(out, /failed: false/)
  assert.match(out, /received: 100\.00 EUR\n/)
  assert.match(out, /completed: true/)
  assert.match(out, /Bob \(wallet, EUR\) +0\.00 EUR → +100\.00 EUR/)
  assert.match(out, /Bank A ledger balanced: true/)
  assert.match(out, /Bank B ledger balanced: true/)

  // What the two banks book between them is the same, and is what 100.00 EUR costs at 0.9 at least.
  const owedByA = cents(/Bank A owes Bank B: (\d+\.\d\d) USD/.exec(out)![1]!)
  const owedToB = cents(/Bank B is owed by Bank A: (\d+\.\d\d) USD/.exec(out)![1]!)
  const debited = cents(/Alice was debited: (\d+\.\d\d) USD/.exec(out)![1]!)
  const maxDebit = cents(/Alice pays at most: (\d+\.\d\d) USD/.exec(out)![1]!)
  assert.equal(owedByA, owedToB)
  assert.ok(owedByA >= 11112n, `${owedByA}`)
  assert.ok(owedByA <= debited && debited <= maxDebit, `${owedByA} ${debited} ${maxDebit}`)
  assert.match(
    out,
    new RegExp(
      `Alice \\(wallet, USD\\) +500\\.00 USD → +${(50000n - debited).toString().replace(/(\d\d)$/, '\\.$1')} USD`,
    ),
  )
  assert.match(
    out,
    new RegExp(
      `peer bank-a .*0\\.00 USD → +-${owedToB.toString().replace(/(\d\d)$/, '\\.$1')} USD`,
    ),
  )
  assert.doesNotMatch(out, /DISAGREES/)
  assert.match(out, /the books agree\.\n/)

  // Both processes are gone and their databases removed.
  const banks = banksIn(out)
  assert.equal(banks.length, 2)
  for (const { pid, dir } of banks) {
    assert.equal(alive(pid), false, `process ${pid} still runs`)
    assert.equal(existsSync(dir), false, `${dir} still exists`)
  }
})

test('a bank that dies: the demo says so, exits non-zero and cleans up', async () => {
  let killed: number | undefined
  const { code, out } = await runDemo((sofar) => {
    const bankB = banksIn(sofar)[1]
    if (killed === undefined && bankB) {
      killed = bankB.pid
      process.kill(bankB.pid, 'SIGKILL')
    }
  })
  assert.ok(killed, out)
  assert.equal(code, 1, out)
  // Killed right after it started: the demo's next call to it fails, whichever that is.
  assert.match(out, /Demo failed: Bank B does not answer \(admin [A-Z]+ \/[^)]*\): \S/)
  for (const { pid, dir } of banksIn(out)) {
    assert.equal(alive(pid), false, `process ${pid} still runs`)
    assert.equal(existsSync(dir), false, `${dir} still exists`)
  }
})
