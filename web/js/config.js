// The app's settings, from /app/config.json (deployments replace that file; no rebuild).
// Without it: one region, "local", answered by /ping at this origin.

const DEFAULTS = { regions: [{ name: 'local', url: '/ping' }], pageSize: 10, samples: 20 };
let loaded = null;

export function config() {
  loaded ??= fetch('/app/config.json', { cache: 'no-cache' })
    .then((resp) => (resp.ok ? resp.json() : {}))
    .catch(() => ({}))
    .then((custom) => ({ ...DEFAULTS, ...custom, regions: custom.regions?.length ? custom.regions : DEFAULTS.regions }));
  return loaded;
}
