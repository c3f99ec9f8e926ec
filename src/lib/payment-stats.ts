/** Payments of one asset created on one UTC day: how many, and how much money they moved. */
export interface DailyVolume {
  /** `YYYY-MM-DD`, UTC. */
  date: string
  assetCode: string
  assetScale: number
  count: number
  amount: bigint
}

/** Payments of a kind created since a time: how many are in each state, and the daily volume. */
export interface PaymentStats<State extends string> {
  states: Record<State, number>
  volume: DailyVolume[]
}

/** One row of `GROUP BY day, asset, state`, as both payment services query it. */
export interface StatsRow {
  date: string
  asset_code: string
  asset_scale: number
  state: string
  count: bigint
  amount: bigint | null
}

/** Folds grouped rows into counts per state (every state present) and volume per day and asset. */
export function foldStats<State extends string>(
  states: readonly State[],
  rows: StatsRow[],
): PaymentStats<State> {
  const counts = Object.fromEntries(states.map((s) => [s, 0])) as Record<State, number>
  const days = new Map<string, DailyVolume>()
  for (const r of rows) {
    counts[r.state as State] += Number(r.count)
    const key = `${r.date} ${r.asset_code} ${r.asset_scale}`
    const day = days.get(key) ?? {
      date: r.date,
      assetCode: r.asset_code,
      assetScale: r.asset_scale,
      count: 0,
      amount: 0n,
    }
    day.count += Number(r.count)
    day.amount += r.amount ?? 0n
    days.set(key, day)
  }
  const volume = [...days.values()].sort(
    (a, b) =>
      a.date.localeCompare(b.date) ||
      a.assetCode.localeCompare(b.assetCode) ||
      a.assetScale - b.assetScale,
  )
  return { states: counts, volume }
}

/** The start of the UTC day `days - 1` days before `now`: a window of `days` calendar days. */
export function windowStart(days: number, now = new Date()): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - (days - 1)))
}
