/**
 * ISO 8601 repeating intervals as Open Payments grant limits use them (`R12/2024-01-01T00:00:00Z/P1M`,
 * `R/2017-03-01T13:00:00Z/2018-05-11T15:30:00Z`, `R-1/P1Y2M10DT2H30M/2022-05-11T15:30:00Z`).
 * Calendar arithmetic is UTC; adding months clamps to the end of the month (Jan 31 + P1M = Feb 28/29).
 */

export interface Duration {
  years: number
  months: number
  weeks: number
  days: number
  hours: number
  minutes: number
  seconds: number
}

export interface RepeatingInterval {
  /** Number of intervals; undefined means unbounded (`R` or `R-1`). */
  repetitions: number | undefined
  /** Forward intervals from a start, or backward intervals ending at an end. */
  anchor: { start: Date } | { end: Date }
  duration: Duration | { ms: number }
}

const DURATION =
  /^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/

export function parseDuration(s: string): Duration | undefined {
  const m = DURATION.exec(s)
  if (!m) return undefined
  const [years, months, weeks, days, hours, minutes, seconds] = m
    .slice(1)
    .map((v) => Number(v ?? 0))
  const d = { years, months, weeks, days, hours, minutes, seconds } as Duration
  return Object.values(d).some((v) => v > 0) ? d : undefined
}

function parseDate(s: string): Date | undefined {
  if (!DATE_TIME.test(s)) return undefined
  const d = new Date(s)
  return Number.isNaN(d.getTime()) ? undefined : d
}

export function parseRepeatingInterval(s: string): RepeatingInterval | undefined {
  const parts = s.split('/')
  if (parts.length !== 3) return undefined
  const [r, a, b] = parts as [string, string, string]
  const rep = /^R(-1|\d*)$/.exec(r)
  if (!rep) return undefined
  const repetitions = rep[1] === '' || rep[1] === '-1' ? undefined : Number(rep[1])
  if (repetitions === 0) return undefined
  const start = parseDate(a)
  if (start) {
    const end = parseDate(b)
    if (end) {
      const ms = end.getTime() - start.getTime()
      return ms > 0 ? { repetitions, anchor: { start }, duration: { ms } } : undefined
    }
    const duration = parseDuration(b)
    return duration && { repetitions, anchor: { start }, duration }
  }
  const duration = parseDuration(a)
  const end = parseDate(b)
  return duration && end ? { repetitions, anchor: { end }, duration } : undefined
}

/** `from` plus `k` times the duration (k may be negative), computed in one step so it never drifts. */
function shift(from: Date, duration: RepeatingInterval['duration'], k: number): Date {
  if ('ms' in duration) return new Date(from.getTime() + k * duration.ms)
  const months = k * (duration.years * 12 + duration.months)
  const y = from.getUTCFullYear()
  const m = from.getUTCMonth() + months
  const targetYear = y + Math.floor(m / 12)
  const targetMonth = ((m % 12) + 12) % 12
  const lastDay = new Date(Date.UTC(targetYear, targetMonth + 1, 0)).getUTCDate()
  const base = Date.UTC(
    targetYear,
    targetMonth,
    Math.min(from.getUTCDate(), lastDay),
    from.getUTCHours(),
    from.getUTCMinutes(),
    from.getUTCSeconds(),
    from.getUTCMilliseconds(),
  )
  const fixedMs =
    ((duration.weeks * 7 + duration.days) * 86_400 +
      duration.hours * 3_600 +
      duration.minutes * 60 +
      duration.seconds) *
    1000
  return new Date(base + k * fixedMs)
}

function approxMs(duration: RepeatingInterval['duration']): number {
  if ('ms' in duration) return duration.ms
  return (
    ((duration.years * 365.25 + duration.months * 30.44 + duration.weeks * 7 + duration.days) *
      86_400 +
      duration.hours * 3_600 +
      duration.minutes * 60 +
      duration.seconds) *
    1000
  )
}

/** The interval `[start, end)` that contains `now`, or undefined before the first or after the last. */
export function currentInterval(
  ri: RepeatingInterval,
  now: Date,
): { start: Date; end: Date } | undefined {
  const t = now.getTime()
  const forward = 'start' in ri.anchor
  const origin = 'start' in ri.anchor ? ri.anchor.start : ri.anchor.end
  // Index k counts intervals away from the anchor: [origin + k·d, origin + (k+1)·d) going forward,
  // [origin − (k+1)·d, origin − k·d) going backward. Estimate k, then walk to the exact one.
  const sign = forward ? 1 : -1
  let k = Math.max(0, Math.floor((sign * (t - origin.getTime())) / approxMs(ri.duration)) - 1)
  const bounds = (i: number) => {
    const a = shift(origin, ri.duration, sign * i)
    const b = shift(origin, ri.duration, sign * (i + 1))
    return forward ? { start: a, end: b } : { start: b, end: a }
  }
  if (forward ? t < origin.getTime() : t >= origin.getTime()) return undefined
  for (;;) {
    const { start, end } = bounds(k)
    if (t >= start.getTime() && t < end.getTime()) {
      return ri.repetitions !== undefined && k >= ri.repetitions ? undefined : { start, end }
    }
    k += forward === t >= end.getTime() ? 1 : -1
    if (k < 0) return undefined
  }
}

const UNITS: [keyof Duration, string][] = [
  ['years', 'year'],
  ['months', 'month'],
  ['weeks', 'week'],
  ['days', 'day'],
  ['hours', 'hour'],
  ['minutes', 'minute'],
  ['seconds', 'second'],
]

/** "1 month", "2 years 10 days", for the consent page. */
export function describeDuration(d: RepeatingInterval['duration']): string {
  if ('ms' in d)
    return describeDuration({
      years: 0,
      months: 0,
      weeks: 0,
      days: 0,
      hours: 0,
      minutes: 0,
      seconds: d.ms / 1000,
    })
  return UNITS.filter(([k]) => d[k] > 0)
    .map(([k, unit]) => `${d[k]} ${unit}${d[k] === 1 ? '' : 's'}`)
    .join(' ')
}

/** "every 1 month, 12 times, starting 24 Aug 2022 14:15 UTC", for the consent page. */
export function describeInterval(ri: RepeatingInterval): string {
  const fmt = (d: Date) =>
    `${d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' })} ${d.toISOString().slice(11, 16)} UTC`
  const times =
    ri.repetitions === undefined ? '' : `, ${ri.repetitions} time${ri.repetitions === 1 ? '' : 's'}`
  const anchor =
    'start' in ri.anchor ? `starting ${fmt(ri.anchor.start)}` : `ending ${fmt(ri.anchor.end)}`
  // "every month" rather than "every 1 month".
  const every = describeDuration(ri.duration).replace(/^1 /, '')
  return `every ${every}${times}, ${anchor}`
}
