# aimirror node image. Node 24 runs the TypeScript sources directly (type stripping).
FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY cli ./cli
COPY config ./config
COPY node ./node
COPY protocol ./protocol
# Cache (blobs, index, peer identity) lives in a volume; 8081 is the mirror, 4001 libp2p, 4002 the peer data port.
ENV AIMIRROR_CACHE_DIR=/var/cache/aimirror \
    AIMIRROR_HOST=0.0.0.0
VOLUME ["/var/cache/aimirror"]
EXPOSE 8081 4001 4002
ENTRYPOINT ["node", "bin/aimirror.js"]
CMD ["start"]
