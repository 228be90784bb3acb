//! Slack's form-encoded slash-command bodies: any bytes are read or rejected
//! with a message; what is read keeps its required fields and survives the
//! queue (written as a queue body and read back unchanged).
#![no_main]

use baton_chatops::{CommandMessage, QueueMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match CommandMessage::from_form_urlencoded(data, 1_700_000_000_000) {
        Ok(m) => {
            assert!(!m.command.is_empty() && !m.user_id.is_empty() && !m.response_url.is_empty());
            assert_eq!(
                QueueMessage::parse(&m.to_json()),
                Ok(QueueMessage::Command(m))
            );
        }
        Err(e) => assert!(!e.to_string().trim().is_empty()),
    }
});
