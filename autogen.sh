#!/bin/sh
# Generates configure and Makefile.in; none of them is committed.
set -e
cd "$(dirname "$0")"
mkdir -p build-aux m4
autoreconf --install --force
