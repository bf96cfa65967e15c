#!/usr/bin/env bash
# Stand-in for the agent's env.sh, which records environment settings for the agent; nothing to record here.
exit 0
