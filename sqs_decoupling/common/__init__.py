"""What every construct of this project uses: KMS keys, encrypted log groups, the alarm e-mail topic, range checks,
local Python bundling, cdk-nag acknowledgements and the Control Tower checks."""
