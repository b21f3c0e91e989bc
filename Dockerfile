# faxbridge: a two-stage image. The build stage makes wheels of faxbridge and its
# dependencies; the runtime stage has only the system libraries the server uses and
# runs `faxbridge serve` as an unprivileged user. Data lives in the /var/lib/faxbridge
# volume (SQLite, spool, Maildirs); mount a site file at /etc/faxbridge/site.toml.
#
#   docker build -t faxbridge .
#   docker run -p 2525:2525 -v faxbridge-data:/var/lib/faxbridge faxbridge

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY handlers ./handlers
COPY renderers ./renderers
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
# System libraries the server needs at run time: spandsp for the virtual fax line,
# libtiff for CCITT coding, pango/harfbuzz for WeasyPrint (HTML), LibreOffice for
# Office documents, tesseract to read junk-fax reports, fonts that cover Latin, Greek,
# Cyrillic, Arabic, Hebrew, CJK and Hangul.
# Debian packages follow the base image's point release, so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libspandsp2 libtiff6 libtiff-tools \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 \
        tesseract-ocr tesseract-ocr-eng \
        libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui \
        fonts-dejavu-core fonts-noto-core fonts-noto-cjk fontconfig \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
RUN useradd --system --uid 10001 --home-dir /var/lib/faxbridge --create-home --shell /usr/sbin/nologin faxbridge \
    && mkdir -p /etc/faxbridge && touch /etc/faxbridge/site.toml
COPY config/ /etc/faxbridge/
USER 10001
WORKDIR /var/lib/faxbridge
ENV FAXBRIDGE_DEFAULTS=/etc/faxbridge/defaults.toml \
    FAXBRIDGE__INBOUND__TEMPLATES_DIR=/etc/faxbridge/templates \
    FAXBRIDGE_CONFIG=/etc/faxbridge/site.toml \
    FAXBRIDGE__SMTP__LISTENERS='[{name = "mx", host = "0.0.0.0", port = 2525, tls = "none", starttls = true, auth = "optional"}]'
VOLUME ["/var/lib/faxbridge"]
EXPOSE 2525
STOPSIGNAL SIGTERM
CMD ["faxbridge", "serve"]
