#!/usr/bin/env bash
# A job with nothing to do (a child pipeline needs one job): say so.
echo "no app has changes to apply"
