/**
 * Response serializers compiled by `npm run build`, by `schemaKey` of their schema: as with
 * `precompiled-validators.ts`, `scripts/build.ts` replaces this module in the bundle with
 * fast-json-stringify's standalone code for every response schema; run from source it is empty.
 */
export const serializers: Readonly<Record<string, ((doc: unknown) => string) | undefined>> = {}
