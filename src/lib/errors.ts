/**
 * An error that reaches a client. Every listener renders it in the one envelope
 * `{ error: { code, description, details? } }`; anything else thrown is a 500 and a bug.
 */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    description: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(description)
    this.name = 'HttpError'
  }
}

export const badRequest = (description: string, details?: Record<string, unknown>) =>
  new HttpError(400, 'invalid_request', description, details)
export const unauthorized = (description: string) => new HttpError(401, 'unauthorized', description)
export const notFound = (description: string) => new HttpError(404, 'not_found', description)
export const conflict = (description: string, details?: Record<string, unknown>) =>
  new HttpError(409, 'conflict', description, details)
