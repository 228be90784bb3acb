terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.28.0 is the first release whose aws_lambda_function_url adds, for
      # authorization_type = "NONE", the lambda:InvokeFunction statement (with
      # lambda:InvokedViaFunctionUrl = true) that function URLs created since
      # October 2025 require next to lambda:InvokeFunctionUrl. With an older
      # provider the URL answers 403 to every request.
      version = ">= 6.28, < 7.0"
    }
  }
}
