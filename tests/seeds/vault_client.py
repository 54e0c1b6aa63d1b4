import os
import json
import subprocess
import time
from typing import Dict, Optional

class VaultClient:
    def __init__(self, socket_path: Optional[str] = None):
        self.socket_path = socket_path or os.getenv("VAULT_AGENT_SOCKET_PATH")
        self.cache = {}

    def _run_command(self, cmd: list) -> Dict:
        """Run vault CLI command and return JSON result"""
        try:
            if self.socket_path:
                cmd.extend(["--socket-path", self.socket_path])

            result = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                check=True
            )

            return json.loads(result.stdout)
        except subprocess.CalledProcessError as e:
            raise Exception(f"Vault command failed: {e.stderr}")

    def get_capability(self, resource: str, action: str, ttl: int = 300) -> Dict:
        """Request a capability"""
        cache_key = f"{resource}:{action}"

        # Check cache first
        if cache_key in self.cache:
            cap = self.cache[cache_key]
            expires_at = time.strptime(cap["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
            if time.time() < time.mktime(expires_at):
                return cap

        # Request new capability
        cmd = [
            "vault", "capability", "request",
            "--resource", resource,
            "--action", action,
            "--ttl", str(ttl),
            "--format", "json"
        ]

        if os.getenv("APP_ID"):
            cmd.extend(["--identity", os.getenv("APP_ID")])

        response = self._run_command(cmd)

        if response["status"] != "granted":
            raise Exception(f"Capability denied: {response.get('message', 'Unknown error')}")

        # Cache capability
        self.cache[cache_key] = response["capability"]
        return response["capability"]

    def validate_capability(self, capability_id: str) -> bool:
        """Validate a capability"""
        cmd = [
            "vault", "capability", "validate", capability_id,
            "--format", "json"
        ]

        try:
            result = self._run_command(cmd)
            return result.get("valid", False)
        except Exception:
            return False

    def revoke_capability(self, capability_id: str, reason: str = "No longer needed") -> bool:
        """Revoke a capability"""
        cmd = [
            "vault", "capability", "revoke", capability_id,
            "--reason", reason
        ]

        try:
            subprocess.run(cmd, check=True, capture_output=True)
            return True
        except subprocess.CalledProcessError:
            return False

# Example usage
def main():
    vault = VaultClient()

    try:
        # Get database capability
        db_cap = vault.get_capability("secret:/db/primary", "read", 300)

        # Validate before use
        if vault.validate_capability(db_cap["id"]):
            print(f"Using capability {db_cap['id']} for database access")
            connect_to_database(db_cap["id"])
        else:
            print("Capability validation failed")

    except Exception as e:
        print(f"Error: {e}")

def connect_to_database(capability_id: str):
    """Example database connection using capability"""
    print(f"Connecting to database with capability {capability_id}")
    # Your database connection logic here

if __name__ == "__main__":
    main()
