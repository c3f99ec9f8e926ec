import { readdirSync, readFileSync } from 'node:fs'

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux for every architecture). */
const TICKS = 100

/**
 * CPU seconds (user + system) and memory of a child process, read from Linux's /proc: the server's
 * own counters, without asking it (so measuring costs it nothing). Undefined elsewhere.
 */
export function processStats(
  pid: number,
): { cpuSeconds: number; rssMiB: number; peakRssMiB: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1])
    return {
      cpuSeconds: (Number(f[11]) + Number(f[12])) / TICKS,
      rssMiB: kib('VmRSS') / 1024,
      peakRssMiB: kib('VmHWM') / 1024,
    }
  } catch {
    return undefined
  }
}

/**
 * CPU seconds (user + system) of every PostgreSQL process on this machine, ended ones included, from /proc (the
 * database the bench uses is local): the backends serving the server and the baseline, and
 * PostgreSQL's own background processes. Undefined where /proc is not readable.
 */
export function postgresCpuSeconds(): number | undefined {
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p))
  } catch {
    return undefined
  }
  let ticks = 0
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      if (!stat.includes('(postgres)')) continue
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // utime and stime, plus cutime and cstime: a backend that exits during the cell (an idle
      // connection closed, an autovacuum worker done) leaves its time to the postmaster, which
      // waited for it.
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])
    } catch {
      // The process ended meanwhile.
    }
  }
  return ticks / TICKS
}
