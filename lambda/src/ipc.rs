//! Arrow IPC stream encoding of partial results, shared by worker (encode) and coordinator (decode).

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;

/// Encodes `batches` (all of `schema`) as one Arrow IPC stream.
pub fn encode(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, ArrowError> {
    let mut out = Vec::new();
    {
        let mut writer = StreamWriter::try_new(&mut out, schema)?;
        for batch in batches {
            writer.write(batch)?;
        }
        writer.finish()?;
    }
    Ok(out)
}

/// Decodes an Arrow IPC stream written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<(SchemaRef, Vec<RecordBatch>), ArrowError> {
    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn encode_then_decode_gives_the_same_batches() {
        let schema =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new("n", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec![Some("a"), None])), Arc::new(Int64Array::from(vec![1, 2]))],
        )
        .unwrap();
        let bytes = encode(&schema, &[batch.clone(), batch.clone()]).unwrap();
        let (back_schema, back) = decode(&bytes).unwrap();
        assert_eq!(back_schema, schema);
        assert_eq!(back, vec![batch.clone(), batch]);
    }

    #[test]
    fn an_empty_result_keeps_its_schema() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        let bytes = encode(&schema, &[]).unwrap();
        let (back_schema, back) = decode(&bytes).unwrap();
        assert_eq!(back_schema, schema);
        assert!(back.is_empty());
    }
}
