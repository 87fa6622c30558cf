"""Runs one of Microsoft's azure-keyvault-keys Python samples, unedited, against the test server.

Usage: azure_sample_runner.py <sample.py>

The sample runs as __main__ (as `python sample.py` runs it) and finds everything else the way it
does against Azure: VAULT_URL from the environment, a token from its own DefaultAzureCredential
(the server's managed-identity endpoint, through IDENTITY_ENDPOINT / IDENTITY_HEADER), the
server's certificate through SSL_CERT_FILE / REQUESTS_CA_BUNDLE. Two things are supplied here:

- KeyClient (sync and aio) defaults to verify_challenge_resource=False, the one option a user of
  the test server adds: the challenge names vault.azure.net while the vault is 127.0.0.1.
- time.sleep and asyncio.sleep called from the sample file itself (not from the SDK) return at
  once and are reported: backup_restore_operations*.py waits 60 s after purging for the
  service's purge to finish; the server has purged before it answers. The SDK's own sleeps
  (pollers, retries) are untouched.
"""

import asyncio
import os
import runpy
import sys
import time

import azure.keyvault.keys
import azure.keyvault.keys.aio

SAMPLE = os.path.abspath(sys.argv[1])
skipped_sleeps = []


def _pointed(cls):
    original = cls.__init__

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("verify_challenge_resource", False)
        original(self, *args, **kwargs)

    cls.__init__ = __init__


_pointed(azure.keyvault.keys.KeyClient)
_pointed(azure.keyvault.keys.aio.KeyClient)


def _from_sample():
    return os.path.abspath(sys._getframe(2).f_code.co_filename) == SAMPLE


_time_sleep = time.sleep
_asyncio_sleep = asyncio.sleep


def _sleep(seconds):
    if _from_sample():
        skipped_sleeps.append(seconds)
        return None
    return _time_sleep(seconds)


def _async_sleep(delay, result=None):
    if _from_sample():
        skipped_sleeps.append(delay)
        return _asyncio_sleep(0, result)
    return _asyncio_sleep(delay, result)


time.sleep = _sleep
asyncio.sleep = _async_sleep

sys.argv = [SAMPLE]
runpy.run_path(SAMPLE, run_name="__main__")
print(f"\nrunner: sample finished; sleeps skipped: {skipped_sleeps}")
