const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Whether `id` can be compared with a `uuid` column: anything else makes PostgreSQL fail the query. */
export const isUuid = (id: string) => UUID.test(id)
