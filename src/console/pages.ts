import type { ConsoleRole } from './credentials.js';
import { escapeHtml } from './html.js';

/** The console's pages: name → path and title. The browser modules (browser/main.ts and the page modules it starts) render each by name. */
export const PAGES = [
  { name: 'overview', path: '/console/', title: 'Overview' },
  { name: 'upstreams', path: '/console/upstreams', title: 'Upstreams' },
  { name: 'flights', path: '/console/flights', title: 'Live flights' },
  { name: 'spend', path: '/console/spend', title: 'Spend' },
  { name: 'keys', path: '/console/keys', title: 'Keys' },
] as const;

export type PageName = (typeof PAGES)[number]['name'];

export interface ShellAssets {
  url(name: string): string;
}

/** Every page's document start, to its </head>: no inline script or style (the CSP allows neither), no favicon request. */
function documentHead(title: string, stylesheets: readonly string[], module: string | undefined): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)} · claude-gateway</title>
${stylesheets.map((href) => `<link rel="stylesheet" href="${href}">`).join('\n')}${module === undefined ? '' : `\n<script type="module" src="${module}"></script>`}
</head>`;
}

/**
 * A page's HTML: the frame (navigation, role, logout) is rendered here; the numbers by the page's
 * module from /console/api/live. Nothing inline: the Content-Security-Policy allows scripts and
 * styles from this origin's files only. Every value written into the HTML passes escapeHtml.
 */
export function shellPage(page: PageName, role: ConsoleRole, csrf: string, assets: ShellAssets): string {
  const current = PAGES.find((p) => p.name === page) ?? PAGES[0];
  const nav = PAGES.map((p) => `<a href="${p.path}"${p.name === page ? ' aria-current="page"' : ''}>${escapeHtml(p.title)}</a>`).join('');
  return `${documentHead(current.title, [assets.url('vendor/uplot.css'), assets.url('console.css')], assets.url('main.js'))}
<body data-page="${escapeHtml(page)}" data-csrf="${escapeHtml(csrf)}" data-role="${escapeHtml(role)}">
<header>
<h1>claude-gateway</h1>
<nav aria-label="Console pages">${nav}</nav>
<span class="role">Signed in as ${escapeHtml(role)}</span>
<form method="post" action="/console/logout"><input type="hidden" name="csrf" value="${escapeHtml(csrf)}"><button type="submit">Log out</button></form>
</header>
<main id="app" aria-live="polite"><h2>${escapeHtml(current.title)}</h2><p>Loading…</p></main>
</body>
</html>`;
}

export function loginPage(problem: string | undefined, assets: ShellAssets): string {
  return `${documentHead('Log in', [assets.url('console.css')], undefined)}
<body>
<main>
<form class="login" method="post" action="/console/login">
<h1>claude-gateway console</h1>
${problem === undefined ? '' : `<p class="error" role="alert">${escapeHtml(problem)}</p>`}
<label for="key">Admin or viewer key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form>
</main>
</body>
</html>`;
}
