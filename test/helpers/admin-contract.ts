import assert from 'node:assert/strict'
import type { ValidateFunction } from 'ajv'
import { createAjv } from '../../src/http/validation.ts'
import { type JsonResponse, request, type TestServer } from './server.ts'

type Json = Record<string, any>

export interface AdminContract {
  /** The admin OpenAPI document as served. */
  document: Json
  /**
   * Calls the admin API with the key (as `server.admin` does) and checks the response against the
   * document: the operation is documented, its status is, and a JSON body matches that status's
   * schema. Fails the test otherwise.
   */
  call(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<JsonResponse>
  /** Checks a response obtained another way (e.g. without the key). */
  check(method: string, path: string, res: JsonResponse): void
  /** `METHOD /template` of every operation a checked response came from. */
  exercised: Set<string>
}

/** Validates real admin responses against the served `/openapi.json`, with Ajv. */
export async function adminContract(server: TestServer): Promise<AdminContract> {
  const document = (await request(`${server.adminUrl}/openapi.json`)).body as Json
  const ajv = createAjv({ coerceTypes: false })
  const validators = new Map<object, ValidateFunction>()
  const validatorFor = (schema: object) => {
    let v = validators.get(schema)
    if (!v) {
      v = ajv.compile(schema)
      validators.set(schema, v)
    }
    return v
  }
  // Templates with more literal segments first, so `/ledger/check` wins over `/ledger/{x}`.
  const templates = Object.keys(document.paths)
    .map((template) => ({
      template,
      pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
      literals: template.split('/').filter((s) => s && !s.startsWith('{')).length,
    }))
    .sort((a, b) => b.literals - a.literals)
  const exercised = new Set<string>()

  const check = (method: string, path: string, res: JsonResponse) => {
    const pathname = new URL(path, 'http://x').pathname
    const match = templates.find(
      (t) => t.pattern.test(pathname) && document.paths[t.template][method.toLowerCase()],
    )
    if (!match) {
      // Not an operation: the router's JSON 404 (or the key check's 401 before it).
      assert.ok([401, 404].includes(res.status), `${method} ${pathname} is undocumented`)
      assert.ok(res.body?.error?.code, 'error envelope')
      return
    }
    const op = document.paths[match.template][method.toLowerCase()]
    const label = `${method.toUpperCase()} ${match.template}`
    const documented = op.responses[String(res.status)]
    assert.ok(documented, `${label} answered ${res.status}, which is not documented`)
    exercised.add(label)
    const text = Object.keys(documented.content ?? {}).find((t) => !t.includes('json'))
    if (text) {
      assert.equal(res.headers.get('content-type'), text, `${label} content type`)
      assert.equal(typeof res.body, 'string')
      return
    }
    const schema = documented.content?.['application/json']?.schema
    if (!schema) return
    const validate = validatorFor(schema)
    assert.ok(
      validate(res.body),
      `${label} ${res.status} does not match its schema: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(res.body)}`,
    )
  }

  return {
    document,
    exercised,
    check,
    call: async (method, path, body, headers) => {
      const res = await server.admin(method, path, body, headers)
      check(method, path, res)
      return res
    },
  }
}
