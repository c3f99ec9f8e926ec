import { formatAmount } from '../lib/amount.ts'
import { describeInterval, parseRepeatingInterval } from '../lib/interval.ts'
import type { AccessItem, Amount } from './access.ts'

/** One access item in words for the account holder: what the client may do, and its limits. */
export interface AccessDescription {
  title: string
  actions: string[]
  limits: string[]
}

const ACTIONS: Record<AccessItem['type'], Record<string, string>> = {
  'outgoing-payment': {
    create: 'send payments from this account',
    read: 'see the payments it sends',
    'read-all': 'see every payment sent from this account',
    list: 'list the payments it sends',
    'list-all': 'list every payment sent from this account',
  },
  'incoming-payment': {
    create: 'ask for payments into this account',
    complete: 'close payment requests it made',
    read: 'see the payment requests it made',
    'read-all': 'see every payment request of this account',
    list: 'list the payment requests it made',
    'list-all': 'list every payment request of this account',
  },
  quote: {
    create: 'get quotes for payments',
    read: 'see the quotes it got',
    'read-all': 'see every quote of this account',
  },
}

const money = (a: Amount) => `${formatAmount(BigInt(a.value), a.assetScale)} ${a.assetCode}`

export function describeAccess(item: AccessItem): AccessDescription {
  const title =
    item.type === 'outgoing-payment'
      ? `Send money from ${item.identifier}`
      : item.type === 'incoming-payment'
        ? `Receive money into ${item.identifier ?? 'your account'}`
        : 'Quotes'
  const limits: string[] = []
  const l = item.limits
  if (item.type === 'outgoing-payment') {
    const interval = l?.interval ? parseRepeatingInterval(l.interval) : undefined
    const per = interval ? ` ${describeInterval(interval)}` : ' in total'
    if (l?.debitAmount)
      limits.push(`At most ${money(l.debitAmount)} taken from your account${per}.`)
    else if (l?.receiveAmount)
      limits.push(`At most ${money(l.receiveAmount)} delivered to receivers${per}.`)
    else limits.push(`No amount limit${interval ? ` (${describeInterval(interval)})` : ''}.`)
    if (l?.receiver) limits.push(`Only to the payment request ${l.receiver}.`)
  }
  return { title, actions: item.actions.map((a) => ACTIONS[item.type][a] ?? a), limits }
}

/**
 * A subject request in words: the client wants to learn that the account holder controls the wallet
 * address. `otherHolder` is who signed in when that is someone else, whose answer proves nothing.
 */
export function describeSubject(
  walletAddress: string,
  clientName: string,
  otherHolder: string | null,
): AccessDescription {
  return {
    title: `Confirm that you control ${walletAddress}`,
    actions: [`tell ${clientName} that this wallet address is yours`],
    limits: otherHolder
      ? [
          `You signed in as ${otherHolder}, which does not control this wallet address: ${clientName} will be told that control was not proven.`,
        ]
      : [],
  }
}
