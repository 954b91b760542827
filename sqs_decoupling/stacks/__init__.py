"""The three example stacks, composed from the components, and the app that configures them from cdk.json."""
