import type { FastifyInstance } from 'fastify'
import { amount, uuid } from '../admin/schemas.ts'
import type { Deps } from '../deps.ts'
import { checkBooks } from './invariants.ts'

export function ledgerAdminRoutes(app: FastifyInstance, { db }: Deps): void {
  app.get(
    '/ledger/check',
    {
      schema: {
        summary: 'Reconcile the ledger',
        description:
          'Checks that debits equal credits per asset and that every account’s cached totals equal the sum of its transfers.',
        tags: ['ledger'],
        response: {
          200: {
            type: 'object',
            required: ['balanced', 'assets', 'mismatchedAccounts'],
            properties: {
              balanced: { type: 'boolean' },
              assets: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    assetId: uuid,
                    debitsPosted: amount,
                    creditsPosted: amount,
                    debitsPending: amount,
                    creditsPending: amount,
                  },
                },
              },
              mismatchedAccounts: { type: 'array', items: uuid },
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
      }
    },
  )
}
