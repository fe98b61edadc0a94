# The cutpoint image: the same TypeScript sources run through tsx, as in a clone. Used by docker-compose.yml for the
# orchestrator worker and for the agents beside each mongod.
FROM node:20-bookworm-slim
WORKDIR /opt/cutpoint
COPY package.json package-lock.json ./
# `npm install` from the committed lock installs the locked versions. Not `npm ci`: it rejects a lock that lacks other
# platforms' optional packages (@swc/core-darwin-*), which registry mirrors may not carry (scripts/ensure-deps.mjs).
RUN npm install --omit=dev --no-audit --no-fund
COPY . .
ENTRYPOINT ["node", "/opt/cutpoint/bin/cutpoint.js"]
CMD ["--help"]
