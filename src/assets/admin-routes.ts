import type { FastifyInstance } from 'fastify'
import { errorResponse, idParams, uuid } from '../admin/schemas.ts'
import type { Deps } from '../deps.ts'
import { conflict, notFound } from '../lib/errors.ts'
import { type Asset, createAsset, getAsset, listAssets } from './service.ts'

const assetSchema = {
  type: 'object',
  required: ['id', 'code', 'scale', 'createdAt'],
  properties: {
    id: uuid,
    code: { type: 'string' },
    scale: { type: 'integer' },
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const

const toJson = (a: Asset) => ({ ...a, createdAt: a.createdAt.toISOString() })

export function assetAdminRoutes(app: FastifyInstance, { db }: Deps): void {
  app.post<{ Body: { code: string; scale: number } }>(
    '/assets',
    {
      schema: {
        summary: 'Create an asset (and its settlement account)',
        tags: ['assets'],
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['code', 'scale'],
          properties: {
            code: { type: 'string', pattern: '^[A-Za-z0-9]{1,16}$', description: 'e.g. USD' },
            scale: { type: 'integer', minimum: 0, maximum: 255, description: 'e.g. 2 for cents' },
          },
        },
        response: { 201: assetSchema, 400: errorResponse, 409: errorResponse },
      },
    },
    async (req, reply) => {
      const asset = await createAsset(db, req.body)
      if (asset === 'duplicate_asset') {
        throw conflict(`asset ${req.body.code} with scale ${req.body.scale} already exists`)
      }
      return reply.code(201).send(toJson(asset))
    },
  )

  app.get(
    '/assets',
    {
      schema: {
        summary: 'List assets',
        tags: ['assets'],
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: assetSchema } } },
        },
      },
    },
    async () => ({ items: (await listAssets(db)).map(toJson) }),
  )

  app.get<{ Params: { id: string } }>(
    '/assets/:id',
    {
      schema: {
        summary: 'Get an asset',
        tags: ['assets'],
        params: idParams,
        response: { 200: assetSchema, 404: errorResponse },
      },
    },
    async (req) => {
      const asset = await getAsset(db, req.params.id)
      if (!asset) throw notFound('asset not found')
      return toJson(asset)
    },
  )
}
