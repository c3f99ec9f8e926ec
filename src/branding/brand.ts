/**
 * The ASE's brand on the pages people see: the consent pages of the authorization server and the
 * operator console. Configured with BRAND_* variables; every value is validated when the
 * configuration loads and escaped wherever it is written into a page.
 */
export interface Brand {
  /** Shown in page titles, headers and the consent text. */
  name: string
  /** An `https:` image URL (or `http:` outside production), or a base64 `data:image/…` URI. */
  logoUrl: string | undefined
  /** `#rrggbb`: buttons, links, the header accent. */
  primaryColor: string
  /** `#rrggbb`: the second series of the console's chart, highlights. */
  accentColor: string
}

export const DEFAULT_PRIMARY_COLOR = '#2b6cb0'
export const DEFAULT_ACCENT_COLOR = '#d97706'

/** `#abc` or `#aabbcc` (any case) → `#aabbcc`; anything else (names, rgb(), url(…)) → undefined. */
export function parseColor(value: string): string | undefined {
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(value.trim())
  if (!m) return undefined
  const hex = m[1]!.toLowerCase()
  return hex.length === 3 ? `#${[...hex].map((c) => c + c).join('')}` : `#${hex}`
}

/** Image types a browser shows in `<img>`; SVG there runs no script. */
const DATA_URI = /^data:image\/(png|jpeg|gif|webp|avif|svg\+xml);base64,[A-Za-z0-9+/]+={0,2}$/
/** Room for a detailed logo, small enough to inline on every page. */
export const MAX_LOGO_LENGTH = 200_000

/**
 * A logo is an image URL or an inline image, nothing else: `javascript:`, `data:text/html`,
 * credentials in the URL and relative URLs are refused, so the value can only ever load an image.
 */
export function parseLogoUrl(
  value: string,
  opts: { allowHttp: boolean },
): { ok: true; value: string } | { ok: false; reason: string } {
  if (value.length > MAX_LOGO_LENGTH)
    return { ok: false, reason: `must be at most ${MAX_LOGO_LENGTH} characters` }
  if (value.startsWith('data:')) {
    return DATA_URI.test(value)
      ? { ok: true, value }
      : {
          ok: false,
          reason: 'must be a base64 data URI of an image (png, jpeg, gif, webp, avif, svg+xml)',
        }
  }
  if (!URL.canParse(value))
    return { ok: false, reason: 'must be an https URL or a data:image/… URI' }
  const url = new URL(value)
  const schemes = opts.allowHttp ? ['https:', 'http:'] : ['https:']
  if (!schemes.includes(url.protocol))
    return {
      ok: false,
      reason: `must be an ${opts.allowHttp ? 'http(s)' : 'https'} URL or a data:image/… URI`,
    }
  if (url.username || url.password) return { ok: false, reason: 'must not carry credentials' }
  return { ok: true, value: url.href }
}

/** Where the logo loads from, for a page's `img-src`: `data:` or the logo URL's origin. */
export function logoSource(brand: Brand): string | undefined {
  if (!brand.logoUrl) return undefined
  return brand.logoUrl.startsWith('data:') ? 'data:' : new URL(brand.logoUrl).origin
}

const channels = (hex: string) => [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16))

/** WCAG relative luminance of `#rrggbb`. */
function luminance(hex: string): number {
  const [r, g, b] = channels(hex).map((c) => {
    const s = c / 255
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4
  })
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!
}

/** White or near-black text on `background`, whichever contrasts more. */
export function textOn(background: string): string {
  const l = luminance(background)
  const dark = '#111827'
  return 1.05 / (l + 0.05) >= (l + 0.05) / (luminance(dark) + 0.05) ? '#ffffff' : dark
}

/** `color` blended towards white: `amount` 0 is the colour, 1 is white (tints for backgrounds). */
export function tint(color: string, amount: number): string {
  return `#${channels(color)
    .map((c) =>
      Math.round(c + (255 - c) * amount)
        .toString(16)
        .padStart(2, '0'),
    )
    .join('')}`
}

/** `color` blended towards black: for hover states and text in the brand colour. */
export function shade(color: string, amount: number): string {
  return `#${channels(color)
    .map((c) =>
      Math.round(c * (1 - amount))
        .toString(16)
        .padStart(2, '0'),
    )
    .join('')}`
}

/** The brand as CSS custom properties, for a `:root { … }` rule. Colours are validated hex. */
export function brandCssVariables(brand: Brand): string {
  return [
    `--brand: ${brand.primaryColor}`,
    `--brand-text: ${textOn(brand.primaryColor)}`,
    `--brand-strong: ${shade(brand.primaryColor, 0.25)}`,
    `--brand-soft: ${tint(brand.primaryColor, 0.9)}`,
    `--accent: ${brand.accentColor}`,
    `--accent-soft: ${tint(brand.accentColor, 0.85)}`,
  ].join('; ')
}
