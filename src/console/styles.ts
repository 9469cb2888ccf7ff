/** The console's stylesheet (served as an asset: the Content-Security-Policy allows no inline style). */
export const CONSOLE_CSS = `
:root { color-scheme: light; --fg: #1a1a1a; --muted: #555; --line: #d0d0d0; --accent: #0b5cad; --bad: #a4161a; --warn: #7a4d00; --ok: #1b6e20; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: #fafafa; }
header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.2rem; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.05rem; margin: 0; }
nav a { margin-right: 1rem; color: var(--accent); }
nav a[aria-current="page"] { font-weight: 700; color: var(--fg); text-decoration: none; }
main { padding: 1rem 1.2rem; max-width: 1200px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: .8rem; margin: 0 0 1rem; padding: 0; list-style: none; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .7rem .9rem; }
.tile .label { color: var(--muted); font-size: .85rem; }
.tile .value { font-size: 1.5rem; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; background: #fff; margin-bottom: 1rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); font-variant-numeric: tabular-nums; }
.state-open { color: var(--bad); font-weight: 700; }
.state-halfOpen { color: var(--warn); font-weight: 700; }
.state-closed { color: var(--ok); }
form.login { max-width: 360px; margin: 4rem auto; background: #fff; padding: 1.5rem; border: 1px solid var(--line); border-radius: 6px; }
form.login label { display: block; margin-bottom: .4rem; }
form.login input { width: 100%; padding: .45rem; margin-bottom: .9rem; font: inherit; }
button { font: inherit; padding: .4rem .9rem; background: var(--accent); color: #fff; border: 0; border-radius: 4px; cursor: pointer; }
.error { color: var(--bad); }
.role { margin-left: auto; color: var(--muted); }
.chart { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .5rem; margin-bottom: 1rem; }
.forms { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 1rem; }
form.action { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; }
form.action h3 { margin-top: 0; font-size: 1rem; }
.field { margin-bottom: .5rem; }
main > .field { max-width: 260px; }
.field label { display: block; font-size: .85rem; color: var(--muted); }
.field input, .field select { width: 100%; padding: .35rem; font: inherit; }
.actions button { margin-right: .4rem; }
button.danger { background: var(--bad); }
.secret { background: #fff8e1; border: 2px solid var(--warn); border-radius: 6px; padding: .8rem 1rem; margin-bottom: 1rem; }
.secret code { display: block; font-size: 1.05rem; word-break: break-all; margin: .5rem 0; }
.bars { list-style: none; padding: 0; display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: .8rem; }
.bar { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem; }
.bar meter { width: 100%; height: 1.2rem; }
.bar .numbers { color: var(--muted); font-size: .85rem; }
`;
