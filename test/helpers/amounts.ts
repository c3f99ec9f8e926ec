/** An Open Payments amount in the test servers' default asset (USD, scale 2), as the wire has it. */
export const usd = (value: string | bigint) => ({
  value: String(value),
  assetCode: 'USD',
  assetScale: 2,
})
