import type { FastifyInstance } from 'fastify'
import { dateTime, errorResponse, idParams, uuid } from '../admin/schemas.ts'
import { getAsset } from '../assets/service.ts'
import type { Deps } from '../deps.ts'
import { badRequest, notFound } from '../lib/errors.ts'
import { isHttpUrl } from '../webhooks/endpoints.ts'
import { isWebhookSecret } from '../webhooks/signing.ts'
import { type AssetHook, deleteAssetHook, getAssetHook, setAssetHook } from './hooks.ts'

const hookSchema = {
  type: 'object',
  required: ['assetId', 'url', 'createdAt', 'updatedAt'],
  properties: {
    assetId: uuid,
    url: { type: 'string' },
    createdAt: dateTime,
    updatedAt: dateTime,
    secret: {
      type: 'string',
      description: 'The generated signing secret, only in the answer that generated it.',
    },
  },
} as const

const hookJson = (h: AssetHook) => ({
  assetId: h.assetId,
  url: h.url,
  createdAt: h.createdAt.toISOString(),
  updatedAt: h.updatedAt.toISOString(),
})

type IdParams = { Params: { id: string } }

/**
 * The core-banking hook of an asset (docs/core-banking.md): PUT sets, GET reads, DELETE removes,
 * each idempotent. An asset without one uses the global hook (`CORE_BANKING_URL`), if configured.
 */
export function coreBankingAdminRoutes(app: FastifyInstance, deps: Deps): void {
  const { db } = deps
  const loadAsset = async (id: string) => {
    if (!(await getAsset(db, id))) throw notFound('asset not found')
  }

  app.put<IdParams & { Body: { url: string; secret?: string } }>(
    '/assets/:id/core-banking-hook',
    {
      schema: {
        summary: 'Set the core-banking hook of an asset',
        description:
          'Outgoing payments of this asset are approved, posted and released, and incoming money is approved, through this URL instead of the global `CORE_BANKING_URL`. Without `secret`, a new hook gets a generated Standard Webhooks secret, returned this once, and an existing hook keeps its own. Takes effect at once in this process and within 5 seconds in others.',
        tags: ['core-banking'],
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          properties: {
            url: { type: 'string', format: 'uri', maxLength: 2000 },
            secret: {
              type: 'string',
              maxLength: 200,
              description: '`whsec_` and at least 24 random bytes in base64',
            },
          },
        },
        response: { 200: hookSchema, 400: errorResponse, 404: errorResponse },
      },
    },
    async (req) => {
      await loadAsset(req.params.id)
      if (!isHttpUrl(req.body.url))
        throw badRequest('body.url must be an http:// or https:// URL without credentials', {
          field: 'body.url',
        })
      if (req.body.secret !== undefined && !isWebhookSecret(req.body.secret))
        throw badRequest('body.secret must be whsec_ followed by at least 24 bytes in base64', {
          field: 'body.secret',
        })
      const { hook, secret } = await setAssetHook(db, req.params.id, req.body)
      deps.coreBanking.hooks.invalidate()
      return { ...hookJson(hook), ...(secret !== undefined && { secret }) }
    },
  )

  app.get<IdParams>(
    '/assets/:id/core-banking-hook',
    {
      schema: {
        summary: 'Get the core-banking hook of an asset (without its secret)',
        tags: ['core-banking'],
        params: idParams,
        response: { 200: hookSchema, 400: errorResponse, 404: errorResponse },
      },
    },
    async (req) => {
      await loadAsset(req.params.id)
      const hook = await getAssetHook(db, req.params.id)
      if (!hook) throw notFound('the asset has no core-banking hook of its own')
      return hookJson(hook)
    },
  )

  app.delete<IdParams>(
    '/assets/:id/core-banking-hook',
    {
      schema: {
        summary: 'Remove the core-banking hook of an asset',
        description:
          'The asset falls back to the global hook, if any. Posts and releases still queued for it wait until a hook applies to the asset again.',
        tags: ['core-banking'],
        params: idParams,
        response: { 204: { type: 'null' }, 400: errorResponse, 404: errorResponse },
      },
    },
    async (req, reply) => {
      await loadAsset(req.params.id)
      await deleteAssetHook(db, req.params.id)
      deps.coreBanking.hooks.invalidate()
      return reply.code(204).send()
    },
  )
}
