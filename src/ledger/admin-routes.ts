import type { FastifyInstance } from 'fastify'
import { adminPage, type PageRequest } from '../admin/paging.ts'
import {
  errorResponse,
  idParams,
  listOf,
  listQuery,
  pageQuery,
  total,
  uuid,
} from '../admin/schemas.ts'
import type { AccountKind } from '../db/schema.ts'
import type { Deps } from '../deps.ts'
import { notFound } from '../lib/errors.ts'
import { getAccount, listAccounts } from './accounts.ts'
import { accountJson, accountSchema, transferJson, transferSchema } from './admin-json.ts'
import { accountTransfers, transferExists } from './history.ts'
import { checkBooks } from './invariants.ts'

const KINDS = ['settlement', 'wallet', 'incoming', 'outgoing', 'peer', 'fees'] as const

export function ledgerAdminRoutes(app: FastifyInstance, { db }: Deps): void {
  const load = async (id: string) => {
    const account = await getAccount(db, id)
    if (!account) throw notFound('ledger account not found')
    return account
  }

  app.get(
    '/ledger/check',
    {
      schema: {
        summary: 'Reconcile the ledger',
        description:
          'Checks that debits equal credits per asset, that every account’s totals equal the sum of its transfers, and that no clearing or fee account (limit-free, not checked per transfer) is overdrawn.',
        tags: ['ledger'],
        response: {
          200: {
            type: 'object',
            required: ['balanced', 'assets', 'mismatchedAccounts', 'overdrawnAccounts'],
            properties: {
              balanced: { type: 'boolean' },
              assets: {
                type: 'array',
                items: {
                  type: 'object',
                  required: [
                    'assetId',
                    'debitsPosted',
                    'creditsPosted',
                    'debitsPending',
                    'creditsPending',
                  ],
                  properties: {
                    assetId: uuid,
                    debitsPosted: total,
                    creditsPosted: total,
                    debitsPending: total,
                    creditsPending: total,
                  },
                },
              },
              mismatchedAccounts: { type: 'array', items: uuid },
              overdrawnAccounts: { type: 'array', items: uuid },
            },
          },
        },
      },
    },
    async () => {
      const report = await checkBooks(db)
      return {
        balanced: report.balanced,
        assets: report.assets.map((a) => ({
          assetId: a.assetId,
          debitsPosted: a.debitsPosted.toString(),
          creditsPosted: a.creditsPosted.toString(),
          debitsPending: a.debitsPending.toString(),
          creditsPending: a.creditsPending.toString(),
        })),
        mismatchedAccounts: report.mismatchedAccounts,
        overdrawnAccounts: report.overdrawnAccounts,
      }
    },
  )

  app.get<{ Querystring: PageRequest & { assetId?: string; kind?: AccountKind } }>(
    '/ledger/accounts',
    {
      schema: {
        summary: 'List ledger accounts with their balances',
        description:
          'In id order (stable for paging), optionally of one asset or kind. Wallet addresses and peers name their account as `ledgerAccountId`.',
        tags: ['ledger'],
        querystring: listQuery({ assetId: uuid, kind: { enum: KINDS } }),
        response: { 200: listOf(accountSchema) },
      },
    },
    async (req) => {
      const { first, cursor, assetId, kind } = req.query
      const page = await adminPage(
        { first, cursor },
        async (id) => (await getAccount(db, id)) !== undefined,
        ({ cursorId, limit }) => listAccounts(db, { assetId, kind, afterId: cursorId, limit }),
      )
      return { items: page.items.map(accountJson), pagination: page.pagination }
    },
  )

  app.get<{ Params: { id: string } }>(
    '/ledger/accounts/:id',
    {
      schema: {
        summary: 'Get a ledger account and its balance',
        tags: ['ledger'],
        params: idParams,
        response: { 200: accountSchema, 404: errorResponse },
      },
    },
    async (req) => accountJson(await load(req.params.id)),
  )

  app.get<{ Params: { id: string }; Querystring: { first: number; cursor?: string } }>(
    '/ledger/accounts/:id/transfers',
    {
      schema: {
        summary: 'List the transfers of a ledger account, newest first',
        description: 'Transfers it is debited or credited by, in every state.',
        tags: ['ledger'],
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            first: pageQuery.properties.first,
            cursor: {
              type: 'string',
              minLength: 1,
              maxLength: 200,
              description: 'The `endCursor` (a transfer id) of the previous page.',
            },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['items', 'pagination'],
            properties: {
              items: { type: 'array', items: transferSchema },
              pagination: {
                type: 'object',
                required: ['hasNextPage'],
                properties: { hasNextPage: { type: 'boolean' }, endCursor: { type: 'string' } },
              },
            },
          },
          404: errorResponse,
        },
      },
    },
    async (req) => {
      const account = await load(req.params.id)
      const page = await adminPage(
        req.query,
        (id) => transferExists(db, id),
        ({ cursorId, limit }) => accountTransfers(db, account.id, { limit, beforeId: cursorId }),
      )
      return { items: page.items.map(transferJson), pagination: page.pagination }
    },
  )
}
