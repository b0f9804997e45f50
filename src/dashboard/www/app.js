// app.js — the dashboard's router: each hash route (#/, #/requests?..,
// #/requests/{id}, #/costs, #/sessions, #/sessions/{id}, #/budgets,
// #/limits, #/keys, #/providers) renders one view into <main>; a view may
// return {refresh, every, destroy}: refresh runs every `every` ms (5 s by
// default) while the page is visible (live numbers without a reload),
// destroy when it is left.

import { notice } from './lib.js';
import * as overview from './views/overview.js';
import * as requests from './views/requests.js';
import * as request from './views/request.js';
import * as costs from './views/costs.js';
import * as sessions from './views/sessions.js';
import * as limits from './views/limits.js';
import * as providers from './views/providers.js';
import * as budgets from './views/budgets.js';
import * as keys from './views/keys.js';

const REFRESH_MS = 5000;

const routes = [
  [/^\/?$/, overview.render, '#/'],
  [/^\/requests$/, requests.render, '#/requests'],
  [/^\/requests\/(.+)$/, request.render, '#/requests'],
  [/^\/costs$/, costs.render, '#/costs'],
  [/^\/sessions$/, sessions.renderList, '#/sessions'],
  [/^\/sessions\/(.+)$/, sessions.renderOne, '#/sessions'],
  [/^\/budgets$/, budgets.render, '#/budgets'],
  [/^\/limits$/, limits.render, '#/limits'],
  [/^\/keys$/, keys.render, '#/keys'],
  [/^\/providers$/, providers.render, '#/providers'],
];

let current = null;
let generation = 0;
let lastRefresh = 0;

async function show() {
  const gen = ++generation;
  if (current?.destroy) current.destroy();
  current = null;
  const raw = location.hash.replace(/^#/, '') || '/';
  const path = raw.split('?')[0];
  const view = document.getElementById('view');
  const found = routes.find(([re]) => re.test(path));
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('on', !!found && a.getAttribute('href') === found[2]);
  }
  view.replaceChildren();
  if (!found) {
    view.append(notice(`No view at #${path}.`, 'error'));
    return;
  }
  const [re, render] = found;
  const args = re.exec(path).slice(1).map(decodeURIComponent);
  try {
    const v = await render(view, ...args);
    if (gen !== generation) { if (v?.destroy) v.destroy(); return; }
    current = v || null;
    lastRefresh = Date.now();
  } catch (err) {
    if (gen !== generation) return;
    view.replaceChildren(notice(err.message, 'error'));
  }
}

function status(text, cls = '') {
  const s = document.getElementById('status');
  s.textContent = text;
  s.className = `status ${cls}`;
}

async function tick() {
  if (document.hidden || !current?.refresh) return;
  if (Date.now() - lastRefresh < (current.every || REFRESH_MS) - 100) return;
  lastRefresh = Date.now();
  try {
    await current.refresh();
    status(`updated ${new Date().toLocaleTimeString('en-GB', { hour12: false })}`);
  } catch (err) {
    status(err.message, 'error');
  }
}

window.addEventListener('hashchange', show);
setInterval(tick, REFRESH_MS);
show();
