import { type Brand, brandCssVariables } from '../../branding/brand.ts'

/**
 * The console's one stylesheet, served from the admin listener (CSP `style-src 'self'`): system
 * fonts, no external resources. Brand colours come in as custom properties, so this text is fixed.
 */
const CSS = `
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: #f4f6f9; color: #1f2937;
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
a { color: var(--brand-strong); text-decoration: none; }
a:hover { text-decoration: underline; }
:focus-visible { outline: 3px solid var(--brand); outline-offset: 2px; border-radius: 4px; }
h1 { font-size: 1.45rem; margin: 0; letter-spacing: -.01em; }
h2 { font-size: 1rem; margin: 0; }
.muted { color: #6b7280; }
.small { font-size: .8rem; }

/* Header */
.topbar {
  background: #fff; border-top: 3px solid var(--brand); border-bottom: 1px solid #e5e7eb;
  position: sticky; top: 0; z-index: 1;
}
.topbar .inner { display: flex; align-items: center; gap: 2rem; height: 58px; }
.brandmark { display: flex; align-items: center; gap: .6rem; color: #111827; font-weight: 650; white-space: nowrap; }
.brandmark:hover { text-decoration: none; }
.brandmark img { height: 30px; max-width: 150px; object-fit: contain; }
.brandmark .monogram {
  display: inline-grid; place-items: center; width: 30px; height: 30px; border-radius: 8px;
  background: var(--brand); color: var(--brand-text); font-weight: 700;
}
.brandmark .product { color: #6b7280; font-weight: 500; padding-left: .6rem; border-left: 1px solid #e5e7eb; }
nav.main { display: flex; gap: .25rem; flex: 1; }
nav.main a { color: #4b5563; padding: .4rem .75rem; border-radius: 6px; font-weight: 500; }
nav.main a:hover { background: #f3f4f6; text-decoration: none; }
nav.main a[aria-current="page"] { color: var(--brand-strong); background: var(--brand-soft); }
.signout button { font: inherit; background: none; border: 1px solid #d1d5db; border-radius: 6px; padding: .3rem .8rem; color: #374151; cursor: pointer; }
.signout button:hover { background: #f9fafb; }

.wrap { max-width: 1240px; margin: 0 auto; padding: 0 1.5rem; }
main.wrap { padding-top: 1.5rem; padding-bottom: 3rem; }
.pagehead { display: flex; align-items: flex-end; justify-content: space-between; gap: 1rem; margin-bottom: 1.25rem; }
.pagehead p { margin: .2rem 0 0; color: #6b7280; }
.crumbs { font-size: .85rem; color: #6b7280; margin-bottom: .35rem; }

/* Cards and grids */
.grid { display: grid; gap: 1rem; margin-bottom: 1rem; }
.grid.kpis { grid-template-columns: repeat(4, minmax(0, 1fr)); }
.grid.kpis.three { grid-template-columns: repeat(3, minmax(0, 1fr)); }
.grid.two { grid-template-columns: repeat(2, minmax(0, 1fr)); }
@media (max-width: 960px) { .grid.kpis, .grid.kpis.three, .grid.two { grid-template-columns: 1fr; } }
.card {
  background: #fff; border: 1px solid #e5e7eb; border-radius: 12px;
  box-shadow: 0 1px 2px rgba(16, 24, 40, .04); min-width: 0; margin-bottom: 1rem;
}
.grid > .card { margin-bottom: 0; }
.card > header { display: flex; align-items: center; justify-content: space-between; gap: 1rem; padding: .9rem 1.1rem; border-bottom: 1px solid #f0f1f3; }
.card > header .more { font-size: .85rem; }
.card > .body { padding: 1rem 1.1rem; }
.card.flush > .body { padding: 0; }
.kpi { padding: 1rem 1.1rem; }
.kpi .label { font-size: .75rem; text-transform: uppercase; letter-spacing: .05em; color: #6b7280; font-weight: 600; }
.kpi .value { font-size: 1.9rem; font-weight: 650; letter-spacing: -.02em; margin: .15rem 0; font-variant-numeric: tabular-nums; }
.kpi .detail { display: flex; flex-wrap: wrap; gap: .35rem; font-size: .8rem; color: #4b5563; }
.kpi.alert { border-color: #fecaca; background: #fff7f7; }
.kpi.alert .value { color: #b91c1c; }

/* Tables */
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .55rem 1.1rem; border-bottom: 1px solid #f0f1f3; vertical-align: middle; }
th { font-size: .72rem; text-transform: uppercase; letter-spacing: .05em; color: #6b7280; font-weight: 600; background: #fafbfc; white-space: nowrap; }
tbody tr:last-child td { border-bottom: 0; }
tbody tr:hover td { background: #fafbff; }
td.num, th.num { text-align: right; }
td.wrap-anywhere { overflow-wrap: anywhere; }
.money { font-variant-numeric: tabular-nums; white-space: nowrap; }
.money .code { color: #6b7280; font-size: .85em; }
.id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85em; }
.empty { padding: 1.5rem 1.1rem; color: #6b7280; text-align: center; }
.pager { display: flex; justify-content: flex-end; gap: .5rem; padding: .75rem 1.1rem; border-top: 1px solid #f0f1f3; }

/* Badges and buttons */
.badge { display: inline-block; padding: .05rem .55rem; border-radius: 999px; font-size: .75rem; font-weight: 600; white-space: nowrap; border: 1px solid transparent; }
.badge.good { background: #ecfdf3; color: #067647; border-color: #abefc6; }
.badge.info { background: #eff8ff; color: #175cd3; border-color: #b2ddff; }
.badge.warn { background: #fffaeb; color: #b54708; border-color: #fedf89; }
.badge.bad { background: #fef3f2; color: #b42318; border-color: #fecdca; }
.badge.muted { background: #f2f4f7; color: #475467; border-color: #e4e7ec; }
.btn {
  display: inline-block; font: inherit; font-weight: 600; font-size: .85rem; cursor: pointer;
  padding: .35rem .8rem; border-radius: 6px; border: 1px solid var(--brand); background: var(--brand); color: var(--brand-text);
  text-align: center;
}
.btn:hover { background: var(--brand-strong); border-color: var(--brand-strong); text-decoration: none; }
.btn.ghost { background: #fff; color: var(--brand-strong); border-color: #d1d5db; }
.btn.ghost:hover { background: var(--brand-soft); }
.btn.small { padding: .15rem .6rem; font-size: .8rem; }
form.inline { display: inline; margin: 0; }
.tabs { display: flex; flex-wrap: wrap; gap: .25rem; }
.tabs a { padding: .2rem .65rem; border-radius: 999px; color: #4b5563; font-size: .85rem; border: 1px solid #e5e7eb; background: #fff; }
.tabs a:hover { text-decoration: none; background: #f9fafb; }
.tabs a[aria-current="true"] { background: var(--brand); border-color: var(--brand); color: var(--brand-text); }
.notice { border: 1px solid #abefc6; background: #ecfdf3; color: #05603a; padding: .65rem 1rem; border-radius: 8px; margin-bottom: 1rem; }
.notice.error { border-color: #fecdca; background: #fef3f2; color: #912018; }

/* Details */
dl.fields { display: grid; grid-template-columns: minmax(9rem, max-content) 1fr; gap: .45rem 1.5rem; margin: 0; }
dl.fields dt { color: #6b7280; }
dl.fields dd { margin: 0; word-break: break-all; }
pre.json {
  margin: 0; padding: 1rem 1.1rem; background: #0f172a; color: #e2e8f0; border-radius: 0 0 12px 12px;
  font: .8rem/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow: auto; max-height: 28rem;
}

/* Chart */
.chart-tools { display: flex; flex-wrap: wrap; gap: .75rem; align-items: center; }
.chart { display: block; width: 100%; height: auto; }
.chart .grid-line { stroke: #eef0f3; stroke-width: 1; }
.chart .axis { fill: #6b7280; font-size: 11px; }
.chart .bar-in { fill: var(--brand); }
.chart .bar-out { fill: var(--accent); }
.chart .bar-in:hover, .chart .bar-out:hover { opacity: .8; }
.legend { display: flex; gap: 1.25rem; font-size: .85rem; color: #4b5563; margin-top: .5rem; }
.legend .swatch { display: inline-block; width: .75rem; height: .75rem; border-radius: 3px; margin-right: .4rem; vertical-align: -1px; }
.legend .swatch.in { background: var(--brand); }
.legend .swatch.out { background: var(--accent); }
details.data { margin-top: .75rem; font-size: .85rem; }
details.data summary { cursor: pointer; color: #4b5563; }
details.data table { margin-top: .5rem; }
details.data td, details.data th { padding: .3rem .6rem; }

/* Sign-in */
body.signin { background: var(--brand-soft); min-height: 100vh; display: grid; place-items: center; padding: 1.5rem; }
.signin-card { width: 100%; max-width: 24rem; background: #fff; border-radius: 14px; padding: 2rem; border-top: 4px solid var(--brand); box-shadow: 0 1px 2px rgba(16,24,40,.06), 0 12px 32px rgba(16,24,40,.1); }
.signin-card .brandmark { justify-content: center; margin-bottom: 1.25rem; font-size: 1.05rem; }
.signin-card .brandmark img { height: 44px; max-width: 200px; }
.signin-card h1 { font-size: 1.2rem; text-align: center; }
.signin-card p.lead { text-align: center; color: #6b7280; margin: .35rem 0 1.25rem; }
.signin-card label { display: block; font-weight: 600; margin-bottom: .3rem; }
.signin-card input[type=password] { width: 100%; font: inherit; padding: .55rem .7rem; border: 1px solid #d1d5db; border-radius: 8px; }
.signin-card .btn { width: 100%; padding: .6rem; margin-top: 1rem; font-size: .95rem; }
.signin-card .error { color: #b42318; background: #fef3f2; border: 1px solid #fecdca; border-radius: 8px; padding: .5rem .75rem; margin-bottom: 1rem; }
.signin-card .note { color: #6b7280; font-size: .8rem; margin-top: 1.25rem; text-align: center; }
`

/** The stylesheet with the brand's colours. */
export function consoleCss(brand: Brand): string {
  return `:root { ${brandCssVariables(brand)}; }\n${CSS}`
}
