# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_aether_vault_global_optspecs
    string join \n socket-path= format= v/verbose config= h/help V/version
end

function __fish_aether_vault_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_aether_vault_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_aether_vault_using_subcommand
    set -l cmd (__fish_aether_vault_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c aether-vault -n "__fish_aether_vault_needs_command" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_needs_command" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_needs_command" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_needs_command" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_needs_command" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_needs_command" -f -a "agent" -d 'Run and manage the agent'
complete -c aether-vault -n "__fish_aether_vault_needs_command" -f -a "capability" -d 'Request, validate, revoke and list capabilities'
complete -c aether-vault -n "__fish_aether_vault_needs_command" -f -a "policy" -d 'Check, test and list policies'
complete -c aether-vault -n "__fish_aether_vault_needs_command" -f -a "credential" -d 'Show and test the systemd credentials units get at start (LoadCredential=)'
complete -c aether-vault -n "__fish_aether_vault_needs_command" -f -a "audit" -d 'Verify and read the audit log'
complete -c aether-vault -n "__fish_aether_vault_needs_command" -f -a "secret" -d 'Read, write, list and delete secrets (each through a short-lived capability)'
complete -c aether-vault -n "__fish_aether_vault_needs_command" -f -a "exec" -d 'Run a command with secrets in its environment (never printed)'
complete -c aether-vault -n "__fish_aether_vault_needs_command" -f -a "completions" -d 'Print the completion script for a shell to standard output (needs no agent)'
complete -c aether-vault -n "__fish_aether_vault_needs_command" -f -a "doctor" -d 'Check the installation: socket, systemd units, file owners and modes, policies, users and groups they name, audit chain, keys, secrets backend; each finding with its fix (exit 0 no problem, warnings included; 1 a problem)'
complete -c aether-vault -n "__fish_aether_vault_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload health metrics config help" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload health metrics config help" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload health metrics config help" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload health metrics config help" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload health metrics config help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload health metrics config help" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload health metrics config help" -f -a "start" -d 'Run the agent in the foreground (until SIGTERM/SIGINT or `agent stop`)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload health metrics config help" -f -a "stop" -d 'Ask the running agent to stop, and wait until it has (admin)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload health metrics config help" -f -a "status" -d 'Show the agent\'s status (`--verbose`: detailed, admin)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload health metrics config help" -f -a "reload" -d 'Reload the policy files (admin)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload health metrics config help" -f -a "health" -d 'Check the agent\'s health: exit 0 healthy, 1 unhealthy, 2 no agent answers'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload health metrics config help" -f -a "metrics" -d 'Print the agent\'s metrics (Prometheus/OpenMetrics text)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload health metrics config help" -f -a "config" -d 'Show the effective configuration, check it with `--validate`, or show the running agent\'s with `--running`'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload health metrics config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from start" -l mode -d 'Operating mode (sets TTL, connection and log defaults)' -r -f -a "development\t'Local development: long TTLs; with no policy, the agent\'s own uid is allowed'
standard\t'The default'
hardened\t'Short TTLs, fewer connections'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from start" -l policy-dir -d 'Directory of policy files' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from start" -l state-dir -d 'Directory for the agent\'s state (signing key)' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from start" -l audit-file -d 'Audit log file (JSON lines)' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from start" -l log-level -d 'Log level' -r -f -a "trace\t''
debug\t''
info\t''
warn\t''
error\t''"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from start" -l credentials-socket -d 'systemd credentials socket to bind when systemd passes none named `credentials` (`credentials.socket_path`); an empty value binds none' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from start" -l region -d 'A label for where the agent runs (`region`), e.g. us-west-2: shown in `agent status` and written into every audit record; decides nothing' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from start" -l log-target -d 'Where operational logs go' -r -f -a "auto\t'journald when the process runs under systemd (or stderr is not a terminal and the journal socket exists), else stderr'
journald\t'Always journald'
stderr\t'Always stderr'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from start" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from start" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from start" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from start" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from start" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from start" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from stop" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from stop" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from stop" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from stop" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from stop" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from stop" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from status" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from status" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from status" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from status" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from reload" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from reload" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from reload" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from reload" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from reload" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from reload" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from health" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from health" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from health" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from health" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from health" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from health" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from metrics" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from metrics" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from metrics" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from metrics" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from metrics" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from metrics" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from config" -l mode -d 'Operating mode (sets TTL, connection and log defaults)' -r -f -a "development\t'Local development: long TTLs; with no policy, the agent\'s own uid is allowed'
standard\t'The default'
hardened\t'Short TTLs, fewer connections'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from config" -l policy-dir -d 'Directory of policy files' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from config" -l state-dir -d 'Directory for the agent\'s state (signing key)' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from config" -l audit-file -d 'Audit log file (JSON lines)' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from config" -l log-level -d 'Log level' -r -f -a "trace\t''
debug\t''
info\t''
warn\t''
error\t''"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from config" -l credentials-socket -d 'systemd credentials socket to bind when systemd passes none named `credentials` (`credentials.socket_path`); an empty value binds none' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from config" -l region -d 'A label for where the agent runs (`region`), e.g. us-west-2: shown in `agent status` and written into every audit record; decides nothing' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from config" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from config" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from config" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from config" -l validate -d 'Only check the configuration: print `Configuration is valid` or the error'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from config" -l running -d 'Show the running agent\'s effective configuration and where each value came from (administrators only)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from config" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from config" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "start" -d 'Run the agent in the foreground (until SIGTERM/SIGINT or `agent stop`)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "stop" -d 'Ask the running agent to stop, and wait until it has (admin)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show the agent\'s status (`--verbose`: detailed, admin)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "reload" -d 'Reload the policy files (admin)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "health" -d 'Check the agent\'s health: exit 0 healthy, 1 unhealthy, 2 no agent answers'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "metrics" -d 'Print the agent\'s metrics (Prometheus/OpenMetrics text)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "config" -d 'Show the effective configuration, check it with `--validate`, or show the running agent\'s with `--running`'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and not __fish_seen_subcommand_from request validate revoke list show status help" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and not __fish_seen_subcommand_from request validate revoke list show status help" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and not __fish_seen_subcommand_from request validate revoke list show status help" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and not __fish_seen_subcommand_from request validate revoke list show status help" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and not __fish_seen_subcommand_from request validate revoke list show status help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and not __fish_seen_subcommand_from request validate revoke list show status help" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and not __fish_seen_subcommand_from request validate revoke list show status help" -f -a "request" -d 'Ask the agent for a capability (exit 0 granted, 2 denied, 1 error)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and not __fish_seen_subcommand_from request validate revoke list show status help" -f -a "validate" -d 'Check a capability, using it once (exit 0 valid, 2 invalid, 1 error)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and not __fish_seen_subcommand_from request validate revoke list show status help" -f -a "revoke" -d 'Revoke a capability'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and not __fish_seen_subcommand_from request validate revoke list show status help" -f -a "list" -d 'List capabilities (yours; an admin sees all)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and not __fish_seen_subcommand_from request validate revoke list show status help" -f -a "show" -d 'Show one capability (yours; an admin sees any), without using it'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and not __fish_seen_subcommand_from request validate revoke list show status help" -f -a "status" -d 'Check that the agent answers, and show counts'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and not __fish_seen_subcommand_from request validate revoke list show status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from request" -l resource -d 'The resource, e.g. `secret:/db/primary`' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from request" -l action -l actions -d 'Actions wanted; comma-separated and/or repeated (`--action read,write --action delete`)' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from request" -l ttl -d 'Lifetime: seconds (300) or a duration (5m, 1h30m, 90s) [default: the agent\'s, per mode]; a grant shorter than asked is noted on stderr with the limit that shortened it' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from request" -l max-uses -d 'Number of uses allowed [default: the agent\'s]' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from request" -l identity -d 'A label for the requester, recorded with the capability (not trusted for decisions)' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from request" -l purpose -d 'Why the capability is wanted (recorded)' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from request" -l constraints -d 'Restrictions as JSON, e.g. `{"ipAddresses":["10.0.0.0/8"]}`' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from request" -l context -d 'Free-form context as JSON (recorded)' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from request" -l output -d 'Also write the agent\'s JSON response to FILE (mode 0600) when granted' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from request" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from request" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from request" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from request" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from request" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from request" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from validate" -l context -d 'Facts for the capability\'s constraints as JSON, e.g. `{"ipAddress":"10.1.2.3"}`' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from validate" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from validate" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from validate" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from validate" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from validate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from validate" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from revoke" -l reason -d 'Why (recorded in the audit log)' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from revoke" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from revoke" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from revoke" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from revoke" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -l status -d 'Only capabilities with this status' -r -f -a "active\t'Neither revoked nor expired'
revoked\t'Revoked'
expired\t'Past its expiry'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -l resource -d 'Only capabilities for this resource' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -l identity -d 'Only capabilities with this identity label' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -l type -d 'Only capabilities of this type' -r -f -a "read\t'Read'
write\t'Write'
delete\t'Delete'
execute\t'Execute'
admin\t'Admin'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -l issuer -d 'Only capabilities from this issuer' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -l uid -d 'Only capabilities held by this uid (admin)' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -l limit -d 'At most this many' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -l offset -d 'Skip this many first' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -l sort-by -d 'Order by this field (without it: newest first)' -r -f -a "issued_at\t'When it was issued'
expires_at\t'When it expires'
id\t'Its id'
type\t'Its type'
resource\t'Its resource'
identity\t'Its holder\'s identity label'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -l sort-order -d 'The order: asc (the default with --sort-by) or desc' -r -f -a "asc\t'Smallest, earliest first'
desc\t'Largest, latest first'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -l no-headers -d 'Leave out the header line of the table (for scripts that read the columns)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from show" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from show" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from show" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from show" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from status" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from status" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from status" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from status" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from help" -f -a "request" -d 'Ask the agent for a capability (exit 0 granted, 2 denied, 1 error)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from help" -f -a "validate" -d 'Check a capability, using it once (exit 0 valid, 2 invalid, 1 error)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke a capability'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from help" -f -a "list" -d 'List capabilities (yours; an admin sees all)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one capability (yours; an admin sees any), without using it'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from help" -f -a "status" -d 'Check that the agent answers, and show counts'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand capability; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and not __fish_seen_subcommand_from check test list help" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and not __fish_seen_subcommand_from check test list help" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and not __fish_seen_subcommand_from check test list help" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and not __fish_seen_subcommand_from check test list help" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and not __fish_seen_subcommand_from check test list help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and not __fish_seen_subcommand_from check test list help" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and not __fish_seen_subcommand_from check test list help" -f -a "check" -d 'Lint policy files or directories offline, with the agent\'s own parser and checks (exit 1 with file:line messages on any error)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and not __fish_seen_subcommand_from check test list help" -f -a "test" -d 'Show what the policy decides for a described caller: offline against a directory, or `--live` against the running agent\'s set (administrators only). Exit 0 allow, 2 deny'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and not __fish_seen_subcommand_from check test list help" -f -a "list" -d 'Show the running agent\'s policy set: generation, files, rule counts, ignored files, last error (administrators only)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and not __fish_seen_subcommand_from check test list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from check" -l mode -d 'The mode whose fallback applies to an empty or missing directory (default: the configured mode)' -r -f -a "development\t'Local development: long TTLs; with no policy, the agent\'s own uid is allowed'
standard\t'The default'
hardened\t'Short TTLs, fewer connections'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from check" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from check" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from check" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from check" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -l resource -d 'The resource, e.g. `secret:/db/primary`' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -l action -d 'Actions, comma-separated or repeated' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -l uid -d 'The caller\'s uid' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -l user -d 'The caller\'s user name' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -l group -d 'A group the caller is in (repeatable)' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -l unit -d 'The caller\'s systemd unit' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -l exe -d 'The caller\'s executable' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -l dir -d 'Policy directory to test offline (default: the configured one)' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -l mode -d 'Offline: the mode whose fallback applies when no rule is loaded (default: the configured mode)' -r -f -a "development\t'Local development: long TTLs; with no policy, the agent\'s own uid is allowed'
standard\t'The default'
hardened\t'Short TTLs, fewer connections'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -l live -d 'Ask the running agent, with the set it has in force'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from test" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from list" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from list" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from list" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "check" -d 'Lint policy files or directories offline, with the agent\'s own parser and checks (exit 1 with file:line messages on any error)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "test" -d 'Show what the policy decides for a described caller: offline against a directory, or `--live` against the running agent\'s set (administrators only). Exit 0 allow, 2 deny'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "list" -d 'Show the running agent\'s policy set: generation, files, rule counts, ignored files, last error (administrators only)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and not __fish_seen_subcommand_from list test help" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and not __fish_seen_subcommand_from list test help" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and not __fish_seen_subcommand_from list test help" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and not __fish_seen_subcommand_from list test help" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and not __fish_seen_subcommand_from list test help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and not __fish_seen_subcommand_from list test help" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and not __fish_seen_subcommand_from list test help" -f -a "list" -d 'Show the credential mappings the running agent has in force (administrators only)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and not __fish_seen_subcommand_from list test help" -f -a "test" -d 'Show what a start of a unit would get for a credential: offline from the policy files, or `--live` from the running agent, which also asks the secrets backend (administrators only). Exit 0 it would be delivered, 2 refused'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and not __fish_seen_subcommand_from list test help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from list" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from list" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from list" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from test" -l unit -d 'The unit, e.g. `billing.service`' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from test" -l id -d 'The credential id, as in `LoadCredential=ID:…`' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from test" -l dir -d 'Policy directory to test offline (default: the configured one)' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from test" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from test" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from test" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from test" -l live -d 'Ask the running agent, with the set it has in force and its secrets backend'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from test" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from test" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from help" -f -a "list" -d 'Show the credential mappings the running agent has in force (administrators only)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from help" -f -a "test" -d 'Show what a start of a unit would get for a credential: offline from the policy files, or `--live` from the running agent, which also asks the secrets backend (administrators only). Exit 0 it would be delivered, 2 refused'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand credential; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and not __fish_seen_subcommand_from verify tail help" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and not __fish_seen_subcommand_from verify tail help" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and not __fish_seen_subcommand_from verify tail help" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and not __fish_seen_subcommand_from verify tail help" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and not __fish_seen_subcommand_from verify tail help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and not __fish_seen_subcommand_from verify tail help" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and not __fish_seen_subcommand_from verify tail help" -f -a "verify" -d 'Check the hash chain across the log and its rotated files; names the first broken record (file, line, seq) and exits 1'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and not __fish_seen_subcommand_from verify tail help" -f -a "tail" -d 'Show the latest records for people (or as JSON lines with --format json)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and not __fish_seen_subcommand_from verify tail help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from verify" -l seals -d 'The agent\'s seal file (default: audit.seal_file, else STATE_DIR/audit.seals)' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from verify" -l state-dir -d 'The agent\'s state directory: its signing key, and its seal file by default (default: the configured one)' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from verify" -l public-key -d 'The agent\'s public key, base64 as `agent status` shows it (default: from STATE_DIR/signing.key)' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from verify" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from verify" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from verify" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from verify" -l no-seals -d 'Check the hash chain alone, without the seals'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from verify" -l no-journal -d 'Do not read seals from the journal'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from verify" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from tail" -l file -d 'The log (default: the configured one)' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from tail" -s n -l lines -d 'How many records to show first' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from tail" -l type -d 'Only records of this type (e.g. capability_request)' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from tail" -l uid -d 'Only records of this caller uid' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from tail" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from tail" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from tail" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from tail" -s f -l follow -d 'Keep showing records as they are written'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from tail" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from tail" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from tail" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Check the hash chain across the log and its rotated files; names the first broken record (file, line, seq) and exits 1'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "tail" -d 'Show the latest records for people (or as JSON lines with --format json)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and not __fish_seen_subcommand_from get put list delete help" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and not __fish_seen_subcommand_from get put list delete help" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and not __fish_seen_subcommand_from get put list delete help" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and not __fish_seen_subcommand_from get put list delete help" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and not __fish_seen_subcommand_from get put list delete help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and not __fish_seen_subcommand_from get put list delete help" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and not __fish_seen_subcommand_from get put list delete help" -f -a "get" -d 'Print a secret (or one field) or write it to a file (mode 0600)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and not __fish_seen_subcommand_from get put list delete help" -f -a "put" -d 'Write a new version of a secret: `key=value` or `key=@file` pairs'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and not __fish_seen_subcommand_from get put list delete help" -f -a "list" -d 'List the names under a path'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and not __fish_seen_subcommand_from get put list delete help" -f -a "delete" -d 'Delete a secret (all versions)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and not __fish_seen_subcommand_from get put list delete help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from get" -l field -d 'Print only this field' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from get" -l version -d 'A version (default the latest)' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from get" -l capability -d 'Redeem this capability instead of requesting one' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from get" -l output -d 'Write to this file (mode 0600) instead of standard output' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from get" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from get" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from get" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from put" -l capability -d 'Redeem this capability instead of requesting one' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from put" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from put" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from put" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from put" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from put" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from put" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from list" -l capability -d 'Redeem this capability instead of requesting one' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from list" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from list" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from list" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from delete" -l capability -d 'Redeem this capability instead of requesting one' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from delete" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from delete" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from delete" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from help" -f -a "get" -d 'Print a secret (or one field) or write it to a file (mode 0600)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from help" -f -a "put" -d 'Write a new version of a secret: `key=value` or `key=@file` pairs'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the names under a path'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete a secret (all versions)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand secret; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand exec" -l secret -d '`ENV=secret:/PATH#field` (repeatable); the field may be left out when the secret has exactly one' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand exec" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand exec" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand exec" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand exec" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand exec" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand exec" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand completions" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand completions" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand completions" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand completions" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand completions" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand doctor" -l mode -d 'Operating mode (sets TTL, connection and log defaults)' -r -f -a "development\t'Local development: long TTLs; with no policy, the agent\'s own uid is allowed'
standard\t'The default'
hardened\t'Short TTLs, fewer connections'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand doctor" -l policy-dir -d 'Directory of policy files' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand doctor" -l state-dir -d 'Directory for the agent\'s state (signing key)' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand doctor" -l audit-file -d 'Audit log file (JSON lines)' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand doctor" -l log-level -d 'Log level' -r -f -a "trace\t''
debug\t''
info\t''
warn\t''
error\t''"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand doctor" -l credentials-socket -d 'systemd credentials socket to bind when systemd passes none named `credentials` (`credentials.socket_path`); an empty value binds none' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand doctor" -l region -d 'A label for where the agent runs (`region`), e.g. us-west-2: shown in `agent status` and written into every audit record; decides nothing' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand doctor" -l agent-user -d 'The user the agent runs as, whose files these must be [default: the running agent\'s; else, for root with the system paths, aether-vault if it exists; else the caller]' -r
complete -c aether-vault -n "__fish_aether_vault_using_subcommand doctor" -l socket-path -d 'Agent socket [default: $VAULT_AGENT_SOCKET_PATH, else the first of /run/aether-vault/agent.sock and ~/.aether-vault/agent.sock that answers]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand doctor" -l format -d 'Output format' -r -f -a "table\t'Aligned text for people'
json\t'The agent\'s payload as pretty-printed JSON'
yaml\t'The agent\'s payload as YAML'"
complete -c aether-vault -n "__fish_aether_vault_using_subcommand doctor" -l config -d 'Agent configuration file (YAML) [default: $VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml for root (not in development mode) or ~/.aether-vault/agent.yaml]' -r -F
complete -c aether-vault -n "__fish_aether_vault_using_subcommand doctor" -s v -l verbose -d 'Say more (on stderr), and ask the agent for detailed status'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and not __fish_seen_subcommand_from agent capability policy credential audit secret exec completions doctor help" -f -a "agent" -d 'Run and manage the agent'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and not __fish_seen_subcommand_from agent capability policy credential audit secret exec completions doctor help" -f -a "capability" -d 'Request, validate, revoke and list capabilities'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and not __fish_seen_subcommand_from agent capability policy credential audit secret exec completions doctor help" -f -a "policy" -d 'Check, test and list policies'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and not __fish_seen_subcommand_from agent capability policy credential audit secret exec completions doctor help" -f -a "credential" -d 'Show and test the systemd credentials units get at start (LoadCredential=)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and not __fish_seen_subcommand_from agent capability policy credential audit secret exec completions doctor help" -f -a "audit" -d 'Verify and read the audit log'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and not __fish_seen_subcommand_from agent capability policy credential audit secret exec completions doctor help" -f -a "secret" -d 'Read, write, list and delete secrets (each through a short-lived capability)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and not __fish_seen_subcommand_from agent capability policy credential audit secret exec completions doctor help" -f -a "exec" -d 'Run a command with secrets in its environment (never printed)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and not __fish_seen_subcommand_from agent capability policy credential audit secret exec completions doctor help" -f -a "completions" -d 'Print the completion script for a shell to standard output (needs no agent)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and not __fish_seen_subcommand_from agent capability policy credential audit secret exec completions doctor help" -f -a "doctor" -d 'Check the installation: socket, systemd units, file owners and modes, policies, users and groups they name, audit chain, keys, secrets backend; each finding with its fix (exit 0 no problem, warnings included; 1 a problem)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and not __fish_seen_subcommand_from agent capability policy credential audit secret exec completions doctor help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "start" -d 'Run the agent in the foreground (until SIGTERM/SIGINT or `agent stop`)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "stop" -d 'Ask the running agent to stop, and wait until it has (admin)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "status" -d 'Show the agent\'s status (`--verbose`: detailed, admin)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "reload" -d 'Reload the policy files (admin)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "health" -d 'Check the agent\'s health: exit 0 healthy, 1 unhealthy, 2 no agent answers'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "metrics" -d 'Print the agent\'s metrics (Prometheus/OpenMetrics text)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "config" -d 'Show the effective configuration, check it with `--validate`, or show the running agent\'s with `--running`'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from capability" -f -a "request" -d 'Ask the agent for a capability (exit 0 granted, 2 denied, 1 error)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from capability" -f -a "validate" -d 'Check a capability, using it once (exit 0 valid, 2 invalid, 1 error)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from capability" -f -a "revoke" -d 'Revoke a capability'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from capability" -f -a "list" -d 'List capabilities (yours; an admin sees all)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from capability" -f -a "show" -d 'Show one capability (yours; an admin sees any), without using it'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from capability" -f -a "status" -d 'Check that the agent answers, and show counts'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "check" -d 'Lint policy files or directories offline, with the agent\'s own parser and checks (exit 1 with file:line messages on any error)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "test" -d 'Show what the policy decides for a described caller: offline against a directory, or `--live` against the running agent\'s set (administrators only). Exit 0 allow, 2 deny'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "list" -d 'Show the running agent\'s policy set: generation, files, rule counts, ignored files, last error (administrators only)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from credential" -f -a "list" -d 'Show the credential mappings the running agent has in force (administrators only)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from credential" -f -a "test" -d 'Show what a start of a unit would get for a credential: offline from the policy files, or `--live` from the running agent, which also asks the secrets backend (administrators only). Exit 0 it would be delivered, 2 refused'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "verify" -d 'Check the hash chain across the log and its rotated files; names the first broken record (file, line, seq) and exits 1'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "tail" -d 'Show the latest records for people (or as JSON lines with --format json)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from secret" -f -a "get" -d 'Print a secret (or one field) or write it to a file (mode 0600)'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from secret" -f -a "put" -d 'Write a new version of a secret: `key=value` or `key=@file` pairs'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from secret" -f -a "list" -d 'List the names under a path'
complete -c aether-vault -n "__fish_aether_vault_using_subcommand help; and __fish_seen_subcommand_from secret" -f -a "delete" -d 'Delete a secret (all versions)'
