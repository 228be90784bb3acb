//! SQS bodies (slash commands and completion records): any text is read or
//! rejected with a message, and what is read writes back to the same value.
#![no_main]

use baton_chatops::QueueMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    match QueueMessage::parse(body) {
        Ok(message) => assert_eq!(QueueMessage::parse(&message.to_json()), Ok(message)),
        Err(e) => assert!(
            !e.to_string().trim().is_empty(),
            "empty rejection for {body:?}"
        ),
    }
});
