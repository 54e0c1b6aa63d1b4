#!/bin/bash
# integration-test.sh

set -e

echo "ğŸ§ª Starting integration tests..."

# Test 1: IPC Connection
echo "ğŸ“¡ Testing IPC connection..."
vault capability status

# Test 2: Capability Request
echo "ğŸ” Testing capability request..."
CAP_ID=$(vault capability request \
  --resource "secret:/test" \
  --action read \
  --ttl 60 \
  --format json | jq -r '.capability.id')

echo "âœ… Capability granted: $CAP_ID"

# Test 3: Capability Validation
echo "ğŸ” Testing capability validation..."
VALID=$(vault capability validate "$CAP_ID" --format json | jq -r '.valid')

if [ "$VALID" = "true" ]; then
    echo "âœ… Capability validation passed"
else
    echo "âŒ Capability validation failed"
    exit 1
fi

# Test 4: Capability Revocation
echo "ğŸ—‘ï¸ Testing capability revocation..."
REVOKE_RESULT=$(vault capability revoke "$CAP_ID" --reason "Test completed")

if [ "$REVOKE_RESULT" = "Capability revoked successfully" ]; then
    echo "âœ… Capability revocation passed"
else
    echo "âŒ Capability revocation failed"
    exit 1
fi

echo "ğŸ‰ All integration tests passed!"
