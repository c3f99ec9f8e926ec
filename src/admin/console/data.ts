import { type Asset, listAssets } from '../../assets/service.ts'
import type { AccountKind } from '../../db/schema.ts'
import type { Deps } from '../../deps.ts'
import {
  type IncomingPayment,
  incomingPaymentPages,
  incomingPaymentStats,
  stateOf,
} from '../../incoming-payments/service.ts'
import { getAccount } from '../../ledger/accounts.ts'
import { referencedTransfers, type TransferRecord } from '../../ledger/history.ts'
import { type DailyVolume, windowStart } from '../../lib/payment-stats.ts'
import {
  type OutgoingPayment,
  outgoingPaymentPages,
  outgoingPaymentStats,
} from '../../outgoing-payments/service.ts'
import { getBalance } from '../../wallet-addresses/funds.ts'
import {
  getWalletAddress,
  listWalletAddresses,
  type WalletAddress,
} from '../../wallet-addresses/service.ts'
import { walletAddressUrl } from '../../wallet-addresses/urls.ts'
import { type Delivery, listDeliveries } from '../../webhooks/deliveries.ts'
import { getEndpoint } from '../../webhooks/endpoints.ts'
import { queueDepth } from '../../webhooks/queue.ts'
import type { DayVolume } from './chart.ts'
import type { EndpointNames, IncomingRow, OutgoingRow, WalletRow } from './views.ts'

/** How many of each kind the overview shows. */
const RECENT = 8

/**
 * What the console's pages show, read through the services the admin API's routes use (the
 * console has no SQL of its own), shaped for the views.
 */
export function consoleData({ config, db }: Pick<Deps, 'config' | 'db'>) {
  const walletRows = (was: WalletAddress[]): Promise<WalletRow[]> =>
    Promise.all(
      was.map(async (wa) => ({
        walletAddress: wa,
        url: walletAddressUrl(config, wa.path),
        balance: await getBalance(db, wa),
      })),
    )

  const incomingRows = (ps: IncomingPayment[]): IncomingRow[] =>
    ps.map((p) => ({
      payment: p,
      state: stateOf(p),
      walletAddressUrl: walletAddressUrl(config, p.walletAddressPath),
    }))

  /** Payments with their sender, each sender read once. */
  const outgoingRows = async (ps: OutgoingPayment[]): Promise<OutgoingRow[]> => {
    const senders = new Map<string, WalletAddress>()
    for (const id of new Set(ps.map((p) => p.walletAddressId)))
      senders.set(id, (await getWalletAddress(db, { id }))!)
    return ps.map((p) => {
      const sender = senders.get(p.walletAddressId)!
      return { payment: p, sender, walletAddressUrl: walletAddressUrl(config, sender.path) }
    })
  }

  /** The endpoints of some deliveries, each read once; deleted ones are left out. */
  const endpointsOf = async (ds: Delivery[]): Promise<EndpointNames> => {
    const map: EndpointNames = new Map()
    for (const id of new Set(ds.map((d) => d.endpointId))) {
      const e = await getEndpoint(db, id)
      if (e) map.set(id, e)
    }
    return map
  }

  /** An outgoing payment's ledger transfers (as `GET /outgoing-payments/{id}` lists them) and the kinds of their accounts. */
  const transfersOf = async (p: OutgoingPayment) => {
    const transfers: TransferRecord[] = await referencedTransfers(db, {
      reference: `outgoing_payment:${p.id}`,
      referencePrefix: `outgoing:${p.id}:`,
    })
    const accountKinds = new Map<string, AccountKind>()
    for (const id of new Set(transfers.flatMap((t) => [t.debitAccountId, t.creditAccountId]))) {
      const account = await getAccount(db, id)
      if (account) accountKinds.set(id, account.kind)
    }
    return { transfers, accountKinds }
  }

  /** Everything the overview shows, for a window of `days` and the chart's asset. */
  const overview = async (days: number, assetId: string | undefined) => {
    const from = windowStart(days)
    const [incoming, outgoing, assets, queue, wallets, recentIn, recentOut, dead] =
      await Promise.all([
        incomingPaymentStats(db, from),
        outgoingPaymentStats(db, from),
        listAssets(db),
        queueDepth(db),
        listWalletAddresses(db, { first: RECENT }),
        incomingPaymentPages(db, {})({ direction: 'after', limit: RECENT }),
        outgoingPaymentPages(db, {})({ direction: 'after', limit: RECENT }),
        listDeliveries(db, { status: 'dead' }, { first: 6 }),
      ])
    const asset = chartAsset(assets, assetId, [...incoming.volume, ...outgoing.volume])
    return {
      days,
      assets,
      asset,
      chart: asset ? chartDays(from, days, asset, incoming.volume, outgoing.volume) : [],
      incomingStates: incoming.states,
      outgoingStates: outgoing.states,
      queue,
      wallets: await walletRows(wallets.items),
      moreWallets: wallets.hasNextPage,
      incoming: incomingRows(recentIn),
      outgoing: await outgoingRows(recentOut),
      deadLetters: dead.items,
      endpoints: await endpointsOf(dead.items),
    }
  }

  return { walletRows, incomingRows, outgoingRows, endpointsOf, transfersOf, overview }
}

/** The asset the chart shows: the one asked for, else the one with most payments, else the first. */
function chartAsset(
  assets: Asset[],
  wanted: string | undefined,
  volume: DailyVolume[],
): Asset | undefined {
  const asked = assets.find((a) => a.id === wanted)
  if (asked) return asked
  const counts = new Map<Asset, number>()
  for (const v of volume) {
    const a = assets.find((x) => x.code === v.assetCode && x.scale === v.assetScale)
    if (a) counts.set(a, (counts.get(a) ?? 0) + v.count)
  }
  return [...counts.entries()].sort((x, y) => y[1] - x[1])[0]?.[0] ?? assets[0]
}

/** Every day of the window for one asset, with zeros where nothing happened. */
function chartDays(
  from: Date,
  days: number,
  asset: Asset,
  incoming: DailyVolume[],
  outgoing: DailyVolume[],
): DayVolume[] {
  const of = (v: DailyVolume) => v.assetCode === asset.code && v.assetScale === asset.scale
  const inByDate = new Map(incoming.filter(of).map((v) => [v.date, v]))
  const outByDate = new Map(outgoing.filter(of).map((v) => [v.date, v]))
  return Array.from({ length: days }, (_, i) => {
    const date = new Date(from.getTime() + i * 86_400_000).toISOString().slice(0, 10)
    return {
      date,
      incoming: inByDate.get(date)?.amount ?? 0n,
      incomingCount: inByDate.get(date)?.count ?? 0,
      outgoing: outByDate.get(date)?.amount ?? 0n,
      outgoingCount: outByDate.get(date)?.count ?? 0,
    }
  })
}
