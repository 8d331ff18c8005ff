# syntax=docker/dockerfile:1
# One image runs every infermesh service; the container's arguments pick which one
# (deploy/k8s passes dist/services/<name>/main.js). Built with BuildKit, which builds only the
# stages the chosen FLAVOR needs:
#   docker build -t infermesh:0.1.0 .                                  CPU (any machine)
#   docker build --build-arg FLAVOR=gpu -t infermesh:0.1.0-gpu .       GPU (CUDA 12, cuDNN 9)
# FLAVOR=gpu lets onnxruntime-node's install script fetch its CUDA provider, which is not in the
# npm package, and runs on NVIDIA's CUDA runtime image; FLAVOR=cpu uses the CPU build the package ships.

ARG FLAVOR=cpu
# The default Node.js line (scripts/node-lines.json, docs/node.md); any supported line's image works.
ARG NODE_IMAGE=node:24-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

FROM ${NODE_IMAGE} AS node

# Build: every dependency, then the project's own build command (swc → dist/, proto/ copied beside).
FROM node AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# Production dependencies only. ONNXRUNTIME_NODE_INSTALL wins over .npmrc's
# onnxruntime-node-install=skip, so only the gpu flavor downloads the CUDA provider.
FROM node AS deps-cpu
ENV ONNXRUNTIME_NODE_INSTALL=skip
FROM node AS deps-gpu
ENV ONNXRUNTIME_NODE_INSTALL=cuda12
FROM deps-${FLAVOR} AS deps
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Runtime bases: Node's slim image, or CUDA's runtime with the same Node binary copied in
# (nodejs.org builds need glibc 2.28 or newer; Ubuntu 24.04 has 2.39).
FROM ${NODE_IMAGE} AS runtime-cpu
FROM ${CUDA_IMAGE} AS runtime-gpu
COPY --from=node /usr/local/bin/node /usr/local/bin/node

FROM runtime-${FLAVOR} AS runtime
WORKDIR /app
# A numeric, non-root user, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 infermesh \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin infermesh
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
USER 10001:10001
# 8001 router, 8002 inference, 8003 registry (gRPC); 9464 Prometheus metrics (OTEL_METRICS_EXPORTER=prometheus).
EXPOSE 8001 8002 8003 9464
# Telemetry is preloaded so it patches grpc-js before the service loads it (as `npm start` does); the
# young generation is raised as in cli/local-mesh/service-process.ts (GC was a third of a call's CPU).
# The command's args are a service's own flags and main module (serviceArgs there): the router by default.
ENTRYPOINT ["node", "--max-semi-space-size=32", "--require", "./dist/lib/telemetry-register.js"]
CMD ["--initial-old-space-size=64", "dist/services/router/main.js"]
