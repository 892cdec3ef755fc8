# syntax=docker/dockerfile:1
#
# gpu-medic container image: three stages so the runtime image carries neither the compiler toolchain
# nor the dev dependencies.
#
#   docker build -t gpu-medic:dev .
#   docker run --rm gpu-medic:dev --help
#
# Node 20 on Debian bookworm (glibc): better-sqlite3 12.x is the last line that supports Node 20 (see
# STACK.md), and a glibc base lets it use its prebuilt binary where one exists.
ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------------------------------
# build: full dependency tree (TypeScript, types) and `tsc -p tsconfig.build.json` into dist/.
FROM ${NODE_IMAGE} AS build
# better-sqlite3 falls back to node-gyp when no prebuilt binary matches (arm64 variants, new Node
# patch releases); node-gyp needs python3, make and a C++ compiler.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# The image ships the Node headers under /usr/local/include/node: pointing node-gyp there keeps the
# native build from downloading them.
ENV npm_config_nodedir=/usr/local \
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
# Without the simulator, the benchmarks, the evaluation, the commands that need them and test code: the
# .dockerignore and tsconfig.build.json leave out the same files (`gpu-medic demo` here says it needs a checkout).
COPY src ./src
# tsc emits only .js; any non-TypeScript file under src/ (SQL migrations, JSON schemas, templates)
# is copied next to the compiled code so `new URL('./x.sql', import.meta.url)` resolves in dist/ too.
RUN npm run build \
 && cd src \
 && find . -type f ! -name '*.ts' -exec cp --parents {} ../dist/ \;

# ---------------------------------------------------------------------------------------------------
# deps: production dependencies only, compiled for the runtime's exact Node and libc.
FROM ${NODE_IMAGE} AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---------------------------------------------------------------------------------------------------
# runtime: no compiler, no dev dependencies, no source; runs as an unprivileged numeric user so
# Kubernetes' runAsNonRoot can verify it without a passwd lookup.
FROM ${NODE_IMAGE} AS runtime
# MALLOC_ARENA_MAX=2: glibc otherwise keeps up to 8 malloc arenas per core for libuv/V8 threads, and
# freed socket buffers stay in them; 2 arenas lower RSS (docs/benchmarks.md, `npm run bench`).
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true \
    DB_PATH=/var/lib/gpu-medic/gpu-medic.db \
    PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
# The XID catalog and DCGM field-result CSVs are read at run time.
COPY data/*.csv ./data/
# bin/gpu-medic.js runs dist/cli.js when src/ is absent, which it is here.
COPY --from=build /app/dist ./dist
# The database directory must be writable by the runtime user without a volume (docker run); in
# Kubernetes a PVC is mounted over it and fsGroup makes it writable.
RUN groupadd --system --gid 10001 gpu-medic \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin gpu-medic \
 && mkdir -p /var/lib/gpu-medic \
 && chown 10001:10001 /var/lib/gpu-medic
USER 10001:10001
VOLUME ["/var/lib/gpu-medic"]
# /metrics, /healthz, /readyz and, in Slack HTTP mode, /slack/events.
EXPOSE 3000
# No HEALTHCHECK: Kubernetes uses the liveness/readiness probes on /healthz and /readyz instead.
# --heap-growing-percent=50: V8 lets the old generation grow to 1.5 × the live heap between full
# collections instead of up to 4 ×; at 5,000 nodes that is ~200 MB less RSS for about the same CPU
# (docs/benchmarks.md: `npm run bench` runs with the same flag and MALLOC_ARENA_MAX).
ENTRYPOINT ["node", "--heap-growing-percent=50", "bin/gpu-medic.js"]
CMD ["run"]
