from aws_cdk import App

from sqs_decoupling.stacks.video_pipeline_stack import VideoPipelineStack

app = App()
VideoPipelineStack(app, "VideoPipelineStack")
app.synth()
