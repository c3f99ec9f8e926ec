import type { FastifyInstance } from 'fastify'
import { amount, errorResponse, idParams, uuid } from '../admin/schemas.ts'
import { getAsset } from '../assets/service.ts'
import type { Deps } from '../deps.ts'
import { notFound } from '../lib/errors.ts'
import type { FeeSchedule } from '../quotes/pricing.ts'
import { getFee, listFees, setFee } from './service.ts'

const feeSchema = {
  type: 'object',
  required: ['fixed', 'basisPoints'],
  properties: {
    fixed: { ...amount, description: 'Fixed part, in the asset’s smallest unit.' },
    basisPoints: {
      type: 'integer',
      minimum: 0,
      maximum: 10_000,
      description: '1 = 0.01 % of the amount sent.',
    },
  },
} as const

const json = (f: FeeSchedule) => ({ fixed: f.fixed.toString(), basisPoints: f.basisPoints })

export function feeAdminRoutes(app: FastifyInstance, { db }: Deps): void {
  const load = async (id: string) => {
    const asset = await getAsset(db, id)
    if (!asset) throw notFound('asset not found')
    return asset
  }

  app.get(
    '/fees',
    {
      schema: {
        summary: 'List the sending fee of every asset',
        tags: ['fees'],
        response: {
          200: {
            type: 'object',
            required: ['items'],
            properties: {
              items: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['assetId', 'assetCode', 'assetScale', ...feeSchema.required],
                  properties: {
                    assetId: uuid,
                    assetCode: { type: 'string' },
                    assetScale: { type: 'integer' },
                    ...feeSchema.properties,
                  },
                },
              },
            },
          },
        },
      },
    },
    async () => ({
      items: (await listFees(db)).map((f) => ({
        assetId: f.assetId,
        assetCode: f.assetCode,
        assetScale: f.assetScale,
        ...json(f.fee),
      })),
    }),
  )

  app.get<{ Params: { id: string } }>(
    '/assets/:id/fees',
    {
      schema: {
        summary: 'Get the sending fee of an asset',
        tags: ['fees'],
        params: idParams,
        response: { 200: feeSchema, 404: errorResponse },
      },
    },
    async (req) => json(await getFee(db, (await load(req.params.id)).id)),
  )

  app.put<{ Params: { id: string }; Body: { fixed: string; basisPoints: number } }>(
    '/assets/:id/fees',
    {
      schema: {
        summary: 'Set the sending fee of an asset',
        description:
          'Charged to the sender on every quote from a wallet address of this asset: fixed + basisPoints/10000 of the amount sent, rounded up, included in debitAmount. Applies to quotes created from now on.',
        tags: ['fees'],
        params: idParams,
        body: { ...feeSchema, additionalProperties: false },
        response: { 200: feeSchema, 400: errorResponse, 404: errorResponse },
      },
    },
    async (req) => {
      const asset = await load(req.params.id)
      const fee = { fixed: BigInt(req.body.fixed), basisPoints: req.body.basisPoints }
      await setFee(db, asset.id, fee)
      return json(fee)
    },
  )
}
