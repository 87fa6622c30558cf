"""The Python snippet of README-azure.md "Credentials", run as a user runs it.

Unmodified DefaultAzureCredential code, pointed at the test server by environment variables only
(IDENTITY_ENDPOINT, IDENTITY_HEADER, REQUESTS_CA_BUNDLE) plus the vault URL.
"""

import os

from azure.identity import DefaultAzureCredential
from azure.keyvault.keys import KeyClient

# verify_challenge_resource=False: the challenge names vault.azure.net while the vault is 127.0.0.1.
client = KeyClient(os.environ["KEYPORT_AZUREKV_URL"], DefaultAzureCredential(), verify_challenge_resource=False)
key = client.create_ec_key("offline-py")
print(f"created {key.id}")
