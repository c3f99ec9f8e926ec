import type { FastifyRequest } from 'fastify'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export const isUuid = (id: string) => UUID.test(id)

/**
 * Remembers the resource a route's `access` function loaded (to learn its owner), so the handler
 * does not load it again.
 */
export function loadedResource<T>() {
  const loaded = new WeakMap<FastifyRequest, T>()
  return {
    set: (req: FastifyRequest, value: T) => {
      loaded.set(req, value)
      return value
    },
    get: (req: FastifyRequest): T => {
      const value = loaded.get(req)
      if (value === undefined) throw new Error('resource was not loaded by the access check')
      return value
    },
  }
}
